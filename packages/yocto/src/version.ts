/** The package version written into every emitted file's header (kept equal to package.json by a test). */
export const PACKAGE_VERSION = '0.1.0';
