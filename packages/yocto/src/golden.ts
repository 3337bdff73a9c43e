import type { LayerFile } from './layer/file.js';

/** One text document holding a whole layer: each file under a `=== path (mode) ===` line. */
export function serializeLayer(files: readonly LayerFile[]): string {
  return files.map((f) => `=== ${f.path} (${(f.mode ?? 0o644).toString(8)}) ===\n${f.content}`).join('');
}
