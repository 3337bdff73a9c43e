import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BenchError } from './errors.js';

/** Debian's chromium (the `chromium` package); CHROMIUM overrides. */
export function chromiumPath(): string | null {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(
    (p): p is string => typeof p === 'string' && p !== '',
  );
  return candidates.find((p) => existsSync(p)) ?? null;
}

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--hide-scrollbars',
];

function run(bin: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        if (err)
          reject(
            new BenchError('ENDPOINT_FAILED', `chromium failed: ${err.message}\n${stderr.slice(-2000)}`),
          );
        else resolve({ stdout, stderr });
      },
    );
  });
}

/**
 * Opens an HTML file in headless Chromium: returns the DOM after scripts ran
 * (--dump-dom) and, when `screenshot` is given, writes a PNG of the page.
 * Each call uses its own throw-away profile directory.
 */
export async function renderInChromium(
  htmlFile: string,
  options: { screenshot?: string; width?: number; height?: number; timeoutMs?: number } = {},
): Promise<{ dom: string; console: string }> {
  const bin = chromiumPath();
  if (bin === null) {
    throw new BenchError('UNAVAILABLE', 'chromium is not installed (Debian: apt-get install chromium)');
  }
  const profile = mkdtempSync(path.join(os.tmpdir(), `vipc-bench-chromium-${process.pid}-`));
  const url = pathToFileURL(htmlFile).href;
  const timeoutMs = options.timeoutMs ?? 90_000;
  try {
    const common = [...FLAGS, `--user-data-dir=${profile}`, '--enable-logging=stderr', '--v=0'];
    const dom = await run(bin, [...common, '--dump-dom', url], timeoutMs);
    if (options.screenshot) {
      await run(
        bin,
        [
          ...common,
          `--window-size=${options.width ?? 1400},${options.height ?? 2600}`,
          `--screenshot=${options.screenshot}`,
          url,
        ],
        timeoutMs,
      );
    }
    return { dom: dom.stdout, console: dom.stderr };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}
