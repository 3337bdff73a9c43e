/** One file of the emitted layer. */
export interface LayerFile {
  /** Path relative to the layer's root, with `/` separators. */
  path: string;
  /** One line saying what the file is for (the dry-run prints it). */
  purpose: string;
  content: string;
  /** Unix permission bits; 0o644 unless the file is a script. */
  mode?: number;
}
