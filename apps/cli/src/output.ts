/**
 * Where things go: data on stdout (one JSON document with --json), progress
 * and logs on stderr, progress bars only when stderr is a TTY.
 */
export class Output {
  readonly json: boolean;
  readonly tty: boolean;
  readonly quiet: boolean;
  #progressShown = false;

  constructor(options: { json: boolean; quiet?: boolean; stderrIsTty?: boolean }) {
    this.json = options.json;
    this.quiet = options.quiet ?? false;
    this.tty = options.stderrIsTty ?? process.stderr.isTTY === true;
  }

  /** A line of data for humans (stdout); suppressed in --json mode. */
  print(line: string): void {
    if (!this.json) process.stdout.write(`${line}\n`);
  }

  /** The one JSON document of a --json run. */
  document(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** Progress and logs: stderr. */
  log(line: string): void {
    if (this.quiet) return;
    this.clearProgress();
    process.stderr.write(`${line}\n`);
  }

  warn(line: string): void {
    this.clearProgress();
    process.stderr.write(`warning: ${line}\n`);
  }

  /** A live status line, redrawn in place; only on a TTY. */
  progress(line: string): void {
    if (!this.tty || this.quiet) return;
    process.stderr.write(`\r\x1b[2K${line}`);
    this.#progressShown = true;
  }

  clearProgress(): void {
    if (this.#progressShown) {
      process.stderr.write('\r\x1b[2K');
      this.#progressShown = false;
    }
  }
}
