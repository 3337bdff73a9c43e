/** Reads the NDJSON events a `vipc endpoint --json` child prints on stdout. */
import type { Readable } from 'node:stream';

export type EndpointEvent = { event: string } & Record<string, unknown>;

/** Calls `onEvent` for each complete JSON line; lines that are not JSON objects go to `onOther`. */
export function readEvents(
  stream: Readable,
  onEvent: (e: EndpointEvent) => void,
  onOther: (line: string) => void = () => {},
): Promise<void> {
  let buffered = '';
  const MAX_LINE = 1 << 20;
  const line = (text: string) => {
    if (text.trim() === '') return;
    try {
      const v = JSON.parse(text) as unknown;
      if (v && typeof v === 'object' && typeof (v as { event?: unknown }).event === 'string') {
        onEvent(v as EndpointEvent);
        return;
      }
    } catch {
      // not JSON
    }
    onOther(text);
  };
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      line(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf('\n');
    }
    if (buffered.length > MAX_LINE) {
      onOther(buffered.slice(0, 200));
      buffered = '';
    }
  });
  return new Promise((resolve) => {
    stream.once('close', () => {
      line(buffered);
      resolve();
    });
  });
}
