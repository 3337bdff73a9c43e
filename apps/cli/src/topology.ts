import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type YAMLMap } from 'yaml';
import { CliError } from './errors.js';

/** A vhost-user link: one socket, the two ends that meet on it. */
export interface Link {
  name: string;
  /** Absolute socket path (relative paths in the file are taken from socketDir). */
  socket: string;
  queues: number;
  queueSize: number;
  ring: 'split' | 'packed';
  mode: 'poll' | 'event';
}

export type Role = 'frontend' | 'backend';
export type VipcAction = 'echo' | 'sink' | 'source';

export interface VipcEndpoint {
  kind: 'vipc';
  link: string;
  role: Role;
  /** What the endpoint does with messages. */
  action: VipcAction;
}

export interface DpdkEndpoint {
  kind: 'dpdk';
  link: string;
  role: Role;
  app: 'testpmd';
  forwardMode: 'rxonly' | 'txonly' | 'io' | 'macswap';
  /** MiB of memory with --no-huge (default), or from hugepages when hugepages is set. */
  memoryMb: number;
  useHugepages: boolean;
}

export type Endpoint = VipcEndpoint | DpdkEndpoint;

export interface HostEndpoint {
  name: string;
  endpoint: Endpoint;
}

export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface ContainerSpec {
  name: string;
  /** 'node' (busybox + the host's Node.js, built by vipc) or an existing rootfs directory. */
  rootfs: string;
  mounts: Mount[];
  memoryLimitMb: number | undefined;
  endpoint: VipcEndpoint;
}

export interface Hugepages {
  pageSize: '2M' | '1G';
  count: number;
  mount: string;
}

export interface Topology {
  version: 1;
  name: string;
  socketDir: string;
  hugepages: Hugepages | undefined;
  links: Link[];
  endpoints: HostEndpoint[];
  containers: ContainerSpec[];
}

/** One problem in a topology file, with where it is. */
export interface TopologyIssue {
  file: string;
  line: number;
  column: number;
  /** Dotted path of the field, e.g. `links[0].queues`. */
  field: string;
  message: string;
}

export class TopologyError extends CliError {
  readonly issues: TopologyIssue[];

  constructor(issues: TopologyIssue[]) {
    super(
      'TOPOLOGY_INVALID',
      issues
        .map((i) => `${i.file}:${i.line}:${i.column}: ${i.field ? `${i.field}: ` : ''}${i.message}`)
        .join('\n'),
    );
    this.issues = issues;
  }
}

const NAME = /^[a-z][a-z0-9-]{0,30}$/;

class Reader {
  readonly issues: TopologyIssue[] = [];
  constructor(
    readonly file: string,
    readonly lines: LineCounter,
  ) {}

  report(node: Node | null | undefined, field: string, message: string, fallback?: Node): void {
    const at = node?.range?.[0] ?? fallback?.range?.[0] ?? 0;
    const pos = this.lines.linePos(at);
    this.issues.push({ file: this.file, line: pos.line, column: pos.col, field, message });
  }

  map(node: unknown, field: string, parent?: Node): YAMLMap | undefined {
    if (isMap(node)) return node;
    this.report(node as Node, field, 'must be a mapping (key: value lines)', parent);
    return undefined;
  }

  /** Checks that only known keys are present. */
  keys(map: YAMLMap, field: string, known: string[]): void {
    for (const pair of map.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '?';
      if (!known.includes(key)) {
        const hint = known.find((k) => k.toLowerCase() === key.toLowerCase());
        this.report(
          pair.key as Node,
          field ? `${field}.${key}` : key,
          `unknown field${hint ? ` (did you mean '${hint}'?)` : `; expected one of: ${known.join(', ')}`}`,
        );
      }
    }
  }

  node(map: YAMLMap, key: string): Node | undefined {
    return map.get(key, true) as Node | undefined;
  }

  string(
    map: YAMLMap,
    key: string,
    field: string,
    opts: { required?: boolean; pattern?: RegExp; what?: string } = {},
  ) {
    const n = this.node(map, key);
    if (n === undefined) {
      if (opts.required) this.report(null, field, 'is required', map);
      return undefined;
    }
    if (!isScalar(n) || typeof n.value !== 'string' || n.value === '') {
      this.report(n, field, 'must be a non-empty string');
      return undefined;
    }
    if (opts.pattern && !opts.pattern.test(n.value)) {
      this.report(n, field, `'${n.value}' is not ${opts.what ?? `of the form ${opts.pattern}`}`);
      return undefined;
    }
    return n.value;
  }

  oneOf<T extends string>(
    map: YAMLMap,
    key: string,
    field: string,
    values: readonly T[],
    fallback?: T,
  ): T | undefined {
    const n = this.node(map, key);
    if (n === undefined) {
      if (fallback === undefined) this.report(null, field, `is required (one of: ${values.join(', ')})`, map);
      return fallback;
    }
    if (!isScalar(n) || !values.includes(n.value as T)) {
      this.report(
        n,
        field,
        `must be one of: ${values.join(', ')} (got ${JSON.stringify(isScalar(n) ? n.value : '…')})`,
      );
      return undefined;
    }
    return n.value as T;
  }

  integer(
    map: YAMLMap,
    key: string,
    field: string,
    min: number,
    max: number,
    fallback?: number,
  ): number | undefined {
    const n = this.node(map, key);
    if (n === undefined) {
      if (fallback === undefined) this.report(null, field, 'is required', map);
      return fallback;
    }
    if (
      !isScalar(n) ||
      typeof n.value !== 'number' ||
      !Number.isInteger(n.value) ||
      n.value < min ||
      n.value > max
    ) {
      this.report(n, field, `must be an integer from ${min} to ${max}`);
      return undefined;
    }
    return n.value;
  }

  boolean(map: YAMLMap, key: string, field: string, fallback: boolean): boolean {
    const n = this.node(map, key);
    if (n === undefined) return fallback;
    if (!isScalar(n) || typeof n.value !== 'boolean') {
      this.report(n, field, 'must be true or false');
      return fallback;
    }
    return n.value;
  }

  list(map: YAMLMap, key: string, field: string): Node[] {
    const n = this.node(map, key);
    if (n === undefined) return [];
    if (!isSeq(n)) {
      this.report(n, field, 'must be a list (lines starting with "- ")');
      return [];
    }
    return n.items as Node[];
  }
}

function readEndpoint(
  r: Reader,
  node: unknown,
  field: string,
  parent: Node,
  containerSide: boolean,
  extraKeys: string[] = [],
) {
  const m = r.map(node, field, parent);
  if (!m) return undefined;
  const kinds = containerSide ? (['vipc'] as const) : (['vipc', 'dpdk'] as const);
  const kind = r.oneOf(m, 'kind', `${field}.kind`, kinds, 'vipc');
  const common = ['kind', 'link', 'role', ...extraKeys];
  const link = r.string(m, 'link', `${field}.link`, { required: true });
  const role = r.oneOf(m, 'role', `${field}.role`, ['frontend', 'backend'] as const);
  if (kind === 'dpdk') {
    r.keys(m, field, [...common, 'app', 'forwardMode', 'memoryMb', 'useHugepages']);
    const app = r.oneOf(m, 'app', `${field}.app`, ['testpmd'] as const, 'testpmd');
    const forwardMode = r.oneOf(
      m,
      'forwardMode',
      `${field}.forwardMode`,
      ['rxonly', 'txonly', 'io', 'macswap'] as const,
      'io',
    );
    const memoryMb = r.integer(m, 'memoryMb', `${field}.memoryMb`, 64, 65536, 256);
    const useHugepages = r.boolean(m, 'useHugepages', `${field}.useHugepages`, false);
    if (!link || !role || !app || !forwardMode || memoryMb === undefined) return undefined;
    return { kind: 'dpdk', link, role, app, forwardMode, memoryMb, useHugepages } satisfies DpdkEndpoint;
  }
  r.keys(m, field, [...common, 'action']);
  const action = r.oneOf(m, 'action', `${field}.action`, ['echo', 'sink', 'source'] as const, 'echo');
  if (!link || !role || !action || !kind) return undefined;
  return { kind: 'vipc', link, role, action } satisfies VipcEndpoint;
}

/** Parses and validates topology text; every problem is reported with its line. */
export function parseTopology(text: string, file = '<topology>'): Topology {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const r = new Reader(file, lines);
  for (const e of doc.errors) {
    const pos = lines.linePos(e.pos[0]);
    r.issues.push({ file, line: pos.line, column: pos.col, field: '', message: e.message.split('\n')[0]! });
  }
  if (r.issues.length > 0) throw new TopologyError(r.issues);
  const root = r.map(doc.contents, '', undefined);
  if (!root) throw new TopologyError(r.issues);
  r.keys(root, '', ['version', 'name', 'socketDir', 'hugepages', 'links', 'endpoints', 'containers']);
  const version = r.integer(root, 'version', 'version', 1, 1, 1);
  const name =
    r.string(root, 'name', 'name', { pattern: NAME, what: 'a name of lowercase letters, digits and -' }) ??
    'vipc';
  const socketDir = r.string(root, 'socketDir', 'socketDir') ?? '/run/vipc';
  if (!isAbsolute(socketDir)) r.report(r.node(root, 'socketDir'), 'socketDir', 'must be an absolute path');

  let hugepages: Hugepages | undefined;
  const hp = r.node(root, 'hugepages');
  if (hp !== undefined) {
    const m = r.map(hp, 'hugepages');
    if (m) {
      r.keys(m, 'hugepages', ['pageSize', 'count', 'mount']);
      const pageSize = r.oneOf(m, 'pageSize', 'hugepages.pageSize', ['2M', '1G'] as const, '2M');
      const count = r.integer(m, 'count', 'hugepages.count', 1, 1_000_000);
      const mount = r.string(m, 'mount', 'hugepages.mount') ?? '/dev/hugepages';
      if (pageSize && count !== undefined) hugepages = { pageSize, count, mount };
    }
  }

  const links: Link[] = [];
  // Every link name declared, also of links with other mistakes (those are reported already;
  // an endpoint that uses one must not add "not declared" to the list), and where it is.
  const declared = new Map<string, Node>();
  r.list(root, 'links', 'links').forEach((item, i) => {
    const f = `links[${i}]`;
    const m = r.map(item, f, root);
    if (!m) return;
    r.keys(m, f, ['name', 'socket', 'queues', 'queueSize', 'ring', 'mode']);
    const lname = r.string(m, 'name', `${f}.name`, {
      required: true,
      pattern: NAME,
      what: 'a name of lowercase letters, digits and -',
    });
    const socket = r.string(m, 'socket', `${f}.socket`) ?? `${lname ?? 'link'}.sock`;
    const queues = r.integer(m, 'queues', `${f}.queues`, 1, 128, 1);
    const ring = r.oneOf(m, 'ring', `${f}.ring`, ['split', 'packed'] as const, 'split');
    const mode = r.oneOf(m, 'mode', `${f}.mode`, ['poll', 'event'] as const, 'event');
    const queueSize = r.integer(m, 'queueSize', `${f}.queueSize`, 2, 32768, 256);
    if (queueSize !== undefined && ring === 'split' && (queueSize & (queueSize - 1)) !== 0) {
      r.report(r.node(m, 'queueSize'), `${f}.queueSize`, 'must be a power of two with split rings');
    }
    const path = isAbsolute(socket) ? socket : join(socketDir, socket);
    if (Buffer.byteLength(path) > 107)
      r.report(
        r.node(m, 'socket') ?? m,
        `${f}.socket`,
        `'${path}' is longer than a Unix socket path may be (107 bytes)`,
      );
    if (lname && declared.has(lname))
      r.report(r.node(m, 'name'), `${f}.name`, `duplicate link name '${lname}'`);
    if (lname && !declared.has(lname)) declared.set(lname, r.node(m, 'name') ?? m);
    if (lname && queues && ring && mode && queueSize)
      links.push({ name: lname, socket: path, queues, ring, mode, queueSize });
  });
  if (links.length === 0 && r.issues.length === 0)
    r.report(r.node(root, 'links') ?? null, 'links', 'at least one link is required', root);

  const names = new Set<string>();
  const endpoints: HostEndpoint[] = [];
  /** Where each parsed endpoint is, for the cross-reference checks below. */
  const where = new Map<Endpoint, { node: YAMLMap; field: string }>();
  r.list(root, 'endpoints', 'endpoints').forEach((item, i) => {
    const f = `endpoints[${i}]`;
    const m = r.map(item, f, root);
    if (!m) return;
    const ename = r.string(m, 'name', `${f}.name`, {
      required: true,
      pattern: NAME,
      what: 'a name of lowercase letters, digits and -',
    });
    const ep = readEndpoint(r, item, f, root, false, ['name']);
    if (ename && names.has(ename)) r.report(r.node(m, 'name'), `${f}.name`, `duplicate name '${ename}'`);
    if (ename) names.add(ename);
    if (ename && ep) {
      endpoints.push({ name: ename, endpoint: ep });
      where.set(ep, { node: m, field: f });
    }
  });

  const containers: ContainerSpec[] = [];
  r.list(root, 'containers', 'containers').forEach((item, i) => {
    const f = `containers[${i}]`;
    const m = r.map(item, f, root);
    if (!m) return;
    r.keys(m, f, ['name', 'rootfs', 'mounts', 'memoryLimitMb', 'endpoint']);
    const cname = r.string(m, 'name', `${f}.name`, {
      required: true,
      pattern: NAME,
      what: 'a container name of lowercase letters, digits and -',
    });
    const rootfs = r.string(m, 'rootfs', `${f}.rootfs`) ?? 'node';
    if (rootfs !== 'node' && !isAbsolute(rootfs))
      r.report(r.node(m, 'rootfs'), `${f}.rootfs`, "must be 'node' or an absolute path");
    const memoryLimitMb =
      r.node(m, 'memoryLimitMb') === undefined
        ? undefined
        : r.integer(m, 'memoryLimitMb', `${f}.memoryLimitMb`, 16, 1 << 20);
    const mounts: Mount[] = [];
    r.list(m, 'mounts', `${f}.mounts`).forEach((mi, j) => {
      const mf = `${f}.mounts[${j}]`;
      const mm = r.map(mi, mf, m);
      if (!mm) return;
      r.keys(mm, mf, ['source', 'target', 'readOnly']);
      const source = r.string(mm, 'source', `${mf}.source`, { required: true });
      const target = r.string(mm, 'target', `${mf}.target`, { required: true });
      if (source && !isAbsolute(source))
        r.report(r.node(mm, 'source'), `${mf}.source`, 'must be an absolute host path');
      if (target && !isAbsolute(target))
        r.report(r.node(mm, 'target'), `${mf}.target`, 'must be an absolute path inside the container');
      if (source && target)
        mounts.push({ source, target, readOnly: r.boolean(mm, 'readOnly', `${mf}.readOnly`, false) });
    });
    const epNode = r.node(m, 'endpoint');
    if (epNode === undefined) r.report(null, `${f}.endpoint`, 'is required', m);
    const ep = epNode === undefined ? undefined : readEndpoint(r, epNode, `${f}.endpoint`, m, true);
    if (cname && names.has(cname)) r.report(r.node(m, 'name'), `${f}.name`, `duplicate name '${cname}'`);
    if (cname) names.add(cname);
    if (cname && ep && ep.kind === 'vipc') {
      containers.push({ name: cname, rootfs, mounts, memoryLimitMb, endpoint: ep });
      if (isMap(epNode)) where.set(ep, { node: epNode, field: `${f}.endpoint` });
    }
  });

  // Cross-references: every endpoint names a link; each link has one front-end and one back-end.
  const ends = new Map<string, { role: Role; owner: string }[]>();
  const all = [
    ...endpoints.map((e) => ({ owner: e.name, ep: e.endpoint })),
    ...containers.map((c) => ({ owner: c.name, ep: c.endpoint as Endpoint })),
  ];
  for (const { owner, ep } of all) {
    if (!links.some((l) => l.name === ep.link)) {
      if (declared.has(ep.link)) continue; // declared with a mistake, reported above
      const at = where.get(ep)!;
      const names = [...declared.keys()];
      r.report(
        r.node(at.node, 'link') ?? null,
        `${at.field}.link`,
        `${owner} uses link '${ep.link}', which is not declared under links${
          names.length > 0 ? ` (declared: ${names.join(', ')})` : ''
        }`,
        at.node,
      );
      continue;
    }
    const list = ends.get(ep.link) ?? [];
    list.push({ role: ep.role, owner });
    ends.set(ep.link, list);
  }
  for (const l of links) {
    const list = ends.get(l.name) ?? [];
    for (const role of ['frontend', 'backend'] as const) {
      const n = list.filter((e) => e.role === role).length;
      if (n > 1)
        r.report(
          declared.get(l.name) ?? null,
          `links.${l.name}`,
          `has ${n} ${role}s (${list
            .filter((e) => e.role === role)
            .map((e) => e.owner)
            .join(', ')}); a vhost-user link has exactly one of each`,
          root,
        );
    }
  }
  if (hugepages === undefined) {
    for (const e of endpoints) {
      if (e.endpoint.kind === 'dpdk' && e.endpoint.useHugepages) {
        const at = where.get(e.endpoint);
        r.report(
          at ? r.node(at.node, 'useHugepages') : null,
          at ? `${at.field}.useHugepages` : e.name,
          'needs a hugepages section',
          root,
        );
      }
    }
  }

  if (r.issues.length > 0) throw new TopologyError(r.issues);
  return { version: version as 1, name, socketDir, hugepages, links, endpoints, containers };
}

export function loadTopology(path: string): Topology {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError('NOT_FOUND', `cannot read topology file ${path}: ${(err as Error).message}`);
  }
  return parseTopology(text, path);
}

/** The built-in topology of `vipc demo`: a host back-end and a front-end in a container. */
export const DEFAULT_TOPOLOGY_YAML = `# vipc default topology: a host back-end, a front-end in an LXC container.
version: 1
name: vipc-demo
socketDir: /run/vipc
links:
  - name: demo
    socket: demo.sock
    queues: 1
    ring: split
    mode: event
endpoints:
  - name: host
    kind: vipc
    link: demo
    role: backend
    action: echo
containers:
  - name: vipc-guest
    rootfs: node
    endpoint:
      link: demo
      role: frontend
      action: source
`;
