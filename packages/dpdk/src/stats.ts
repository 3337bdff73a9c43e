import { DpdkError } from './errors.js';

/** Counters of one "Forward statistics for port N" block (or the accumulated block). */
export interface ForwardCounters {
  rxPackets: number;
  rxDropped: number;
  rxTotal: number;
  txPackets: number;
  txDropped: number;
  txTotal: number;
}

/** The statistics testpmd prints when forwarding stops ("stop", SIGINT, quit). */
export interface ForwardStats {
  ports: ({ port: number } & ForwardCounters)[];
  /** "Accumulated forward statistics for all ports" */
  accumulated: ForwardCounters;
}

/** One "NIC statistics for port N" block (`show port stats`, or --stats-period output). */
export interface PortStats {
  port: number;
  rxPackets: number;
  rxMissed: number;
  rxBytes: number;
  rxErrors: number;
  rxNombuf: number;
  txPackets: number;
  txErrors: number;
  txBytes: number;
  rxPps: number;
  rxBps: number;
  txPps: number;
  txBps: number;
}

/** One row of `show port summary all`. */
export interface PortSummaryEntry {
  port: number;
  mac: string;
  name: string;
  driver: string;
  status: string;
  link: string;
}

const MAX_LINE = 4096;
// biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes (ESC [ ...) are what this strips
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Split output into lines without terminal escapes and carriage returns; over-long lines are cut. */
export function cleanLines(text: string): string[] {
  return text
    .replace(ANSI, '')
    .split('\n')
    .map((l) => {
      const s = l.replace(/\r/g, '');
      return s.length > MAX_LINE ? s.slice(0, MAX_LINE) : s;
    });
}

function toCount(s: string, what: string): number {
  if (!/^\d{1,20}$/.test(s)) throw new DpdkError('PARSE_ERROR', `${what}: "${s}" is not a counter`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new DpdkError('PARSE_ERROR', `${what}: ${s} exceeds 2^53`);
  return n;
}

/** Read "Key: value   Key2: value2" pairs from a line (keys like RX-packets, Rx-pps). */
function pairs(line: string): Map<string, string> {
  const m = new Map<string, string>();
  const re = /([A-Za-z][A-Za-z-]{0,30}):\s+(\S{1,24})/g;
  for (const hit of line.matchAll(re)) m.set(hit[1]!, hit[2]!);
  return m;
}

function counters(lines: string[], what: string): ForwardCounters {
  const kv = new Map<string, string>();
  for (const l of lines) for (const [k, v] of pairs(l)) kv.set(k, v);
  const get = (k: string) => {
    const v = kv.get(k);
    if (v === undefined) throw new DpdkError('PARSE_ERROR', `${what}: missing ${k}`);
    return toCount(v, `${what} ${k}`);
  };
  return {
    rxPackets: get('RX-packets'),
    rxDropped: get('RX-dropped'),
    rxTotal: get('RX-total'),
    txPackets: get('TX-packets'),
    txDropped: get('TX-dropped'),
    txTotal: get('TX-total'),
  };
}

const PORT_BLOCK = /^\s*-{5,} Forward statistics for port (\d{1,5})\s+-{5,}\s*$/;
const ACC_BLOCK = /^\s*\+{5,} Accumulated forward statistics for all ports\s*\+{5,}\s*$/;
const PORT_END = /^\s*-{20,}\s*$/;
const ACC_END = /^\s*\+{20,}\s*$/;

/**
 * The last complete forward statistics in testpmd output, or undefined when there is none.
 * Throws PARSE_ERROR when a block is present but its counters are malformed.
 */
export function parseForwardStats(text: string): ForwardStats | undefined {
  const lines = cleanLines(text);
  let result: ForwardStats | undefined;
  let ports: ForwardStats['ports'] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    const pm = PORT_BLOCK.exec(line);
    if (pm) {
      const body: string[] = [];
      let j = i + 1;
      while (j < lines.length && !PORT_END.test(lines[j]!) && j - i < 40) body.push(lines[j++]!);
      if (j >= lines.length || !PORT_END.test(lines[j]!)) break; // incomplete block
      const port = Number(pm[1]);
      ports = ports.filter((p) => p.port !== port);
      ports.push({ port, ...counters(body, `forward statistics for port ${port}`) });
      i = j + 1;
      continue;
    }
    if (ACC_BLOCK.test(line)) {
      const body: string[] = [];
      let j = i + 1;
      while (j < lines.length && !ACC_END.test(lines[j]!) && j - i < 40) body.push(lines[j++]!);
      if (j >= lines.length || !ACC_END.test(lines[j]!)) break;
      result = { ports, accumulated: counters(body, 'accumulated forward statistics') };
      ports = [];
      i = j + 1;
      continue;
    }
    i++;
  }
  return result;
}

const NIC_BLOCK = /^\s*#{5,} NIC statistics for port (\d{1,5})\s+#{5,}\s*$/;
const NIC_END = /^\s*#{20,}\s*$/;

/** Every complete "NIC statistics for port N" block, in output order. */
export function parsePortStats(text: string): PortStats[] {
  const lines = cleanLines(text);
  const out: PortStats[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = NIC_BLOCK.exec(lines[i]!);
    if (!m) continue;
    const port = Number(m[1]);
    const kv = new Map<string, string>();
    let j = i + 1;
    while (j < lines.length && !NIC_END.test(lines[j]!) && j - i < 40) {
      for (const [k, v] of pairs(lines[j]!)) kv.set(k, v);
      j++;
    }
    if (j >= lines.length || !NIC_END.test(lines[j]!)) break;
    const what = `NIC statistics for port ${port}`;
    const get = (k: string, optional = false) => {
      const v = kv.get(k);
      if (v === undefined) {
        if (optional) return 0;
        throw new DpdkError('PARSE_ERROR', `${what}: missing ${k}`);
      }
      return toCount(v, `${what} ${k}`);
    };
    out.push({
      port,
      rxPackets: get('RX-packets'),
      rxMissed: get('RX-missed'),
      rxBytes: get('RX-bytes'),
      rxErrors: get('RX-errors'),
      rxNombuf: get('RX-nombuf'),
      txPackets: get('TX-packets'),
      txErrors: get('TX-errors'),
      txBytes: get('TX-bytes'),
      rxPps: get('Rx-pps', true),
      rxBps: get('Rx-bps', true),
      txPps: get('Tx-pps', true),
      txBps: get('Tx-bps', true),
    });
    i = j;
  }
  return out;
}

/** The most recent stats block of each port, by port id. */
export function latestPortStats(text: string): Map<number, PortStats> {
  const m = new Map<number, PortStats>();
  for (const s of parsePortStats(text)) m.set(s.port, s);
  return m;
}

/** Rows of `show port summary all`. Throws PARSE_ERROR when the header is there but a row is malformed. */
export function parsePortSummary(text: string): PortSummaryEntry[] {
  const lines = cleanLines(text);
  const head = lines.findIndex((l) => /^Port\s+MAC Address\s+Name\s+Driver\s+Status\s+Link/.test(l));
  if (head < 0) return [];
  const countLine = lines
    .slice(0, head)
    .reverse()
    .find((l) => l.startsWith('Number of available ports:'));
  const expected = countLine === undefined ? undefined : Number(countLine.split(':')[1]);
  const out: PortSummaryEntry[] = [];
  for (let i = head + 1; i < lines.length; i++) {
    const l = lines[i]!;
    const m =
      /^(\d{1,5})\s+([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})\s+(\S{1,64})\s+(\S{1,64})\s+(\S{1,16})\s+(.{1,32})$/.exec(
        l,
      );
    if (!m) break;
    out.push({
      port: Number(m[1]),
      mac: m[2]!,
      name: m[3]!,
      driver: m[4]!,
      status: m[5]!,
      link: m[6]!.trim(),
    });
  }
  if (expected !== undefined && Number.isInteger(expected) && out.length !== expected) {
    throw new DpdkError(
      'PARSE_ERROR',
      `port summary lists ${out.length} row(s) but says ${expected} port(s)`,
    );
  }
  return out;
}

/** `show port info <id>`: the "Key: value" lines of the block, plus the fields most callers need. */
export interface PortInfo {
  port: number;
  mac: string | undefined;
  deviceName: string | undefined;
  driverName: string | undefined;
  linkUp: boolean | undefined;
  linkSpeed: string | undefined;
  mtu: number | undefined;
  rxQueues: number | undefined;
  txQueues: number | undefined;
  /** Every "Key: value" line, verbatim. */
  fields: Record<string, string>;
}

/** Parse `show port info <id>` output; undefined when there is no "Infos for port" block. */
export function parsePortInfo(text: string): PortInfo | undefined {
  const lines = cleanLines(text);
  const head = lines.findIndex((l) => /^\*{5,} Infos for port (\d{1,5})\s+\*{5,}$/.test(l.trim()));
  if (head < 0) return undefined;
  const port = Number(/Infos for port (\d{1,5})/.exec(lines[head]!)![1]);
  const fields: Record<string, string> = {};
  for (const l of lines.slice(head + 1, head + 200)) {
    const m = /^([A-Za-z][A-Za-z0-9 ()/_-]{0,80}?):\s?(.{0,200})$/.exec(l);
    if (m && !(m[1]! in fields)) fields[m[1]!] = m[2]!.trim();
  }
  const num = (k: string) => {
    const v = fields[k];
    return v !== undefined && /^\d{1,9}$/.test(v) ? Number(v) : undefined;
  };
  const status = fields['Link status'];
  return {
    port,
    mac: fields['MAC address'],
    deviceName: fields['Device name'],
    driverName: fields['Driver name'],
    linkUp: status === undefined ? undefined : status === 'up',
    linkSpeed: fields['Link speed'],
    mtu: num('MTU'),
    rxQueues: num('Current number of RX queues'),
    txQueues: num('Current number of TX queues'),
    fields,
  };
}
