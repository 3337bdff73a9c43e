import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_TOPOLOGY_YAML, parseTopology, TopologyError } from './topology.js';

const fixtures = join(import.meta.dirname, '__fixtures__', 'topologies');
const schema = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', 'schema', 'topology.schema.json'), 'utf8'),
);
const validate = new Ajv({ allErrors: true, useDefaults: false }).compile(schema);

function issuesOf(text: string) {
  try {
    parseTopology(text, 'bad.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(TopologyError);
    return (err as TopologyError).issues;
  }
  throw new Error('the topology was accepted');
}

describe('parseTopology', () => {
  it('reads the default topology with its defaults applied', () => {
    const t = parseTopology(DEFAULT_TOPOLOGY_YAML);
    expect(t.links).toEqual([
      {
        name: 'demo',
        socket: '/run/vipc/demo.sock',
        queues: 1,
        queueSize: 256,
        ring: 'split',
        mode: 'event',
      },
    ]);
    expect(t.endpoints[0]!.endpoint).toEqual({ kind: 'vipc', link: 'demo', role: 'backend', action: 'echo' });
    expect(t.containers[0]!.endpoint.role).toBe('frontend');
    expect(t.containers[0]!.rootfs).toBe('node');
    expect(validate(parse(DEFAULT_TOPOLOGY_YAML))).toBe(true);
  });

  it('reads a varied topology, and the published schema accepts it too', () => {
    const text = readFileSync(join(fixtures, 'two-containers.yaml'), 'utf8');
    const t = parseTopology(text);
    expect(t.hugepages).toEqual({ pageSize: '2M', count: 64, mount: '/dev/hugepages' });
    expect(t.links.map((l) => l.socket)).toEqual(['/run/vipc/a.sock', '/run/vipc/b.sock']);
    expect(t.endpoints[1]!.endpoint).toMatchObject({
      kind: 'dpdk',
      forwardMode: 'rxonly',
      useHugepages: true,
      memoryMb: 256,
    });
    expect(t.containers[0]!.mounts).toEqual([{ source: '/srv/data', target: '/data', readOnly: true }]);
    expect(validate(parse(text))).toBe(true);
  });

  it('the shipped examples are valid, for the parser and for the published schema', () => {
    const dir = join(import.meta.dirname, '..', 'examples');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      expect(parseTopology(text, f).name).toBe(f.replace(/\.yaml$/, ''));
      expect(validate(parse(text))).toBe(true);
    }
  });

  it('points at the line and field of a wrong value', () => {
    const issues = issuesOf(`version: 1
links:
  - name: l0
    queues: 0
    ring: circular
`);
    expect(issues).toEqual([
      expect.objectContaining({
        line: 4,
        field: 'links[0].queues',
        message: 'must be an integer from 1 to 128',
      }),
      expect.objectContaining({
        line: 5,
        field: 'links[0].ring',
        message: expect.stringMatching(/one of: split, packed/),
      }),
    ]);
    expect(validate(parse('links: [{name: l0, queues: 0}]'))).toBe(false);
  });

  it('names unknown fields and suggests the right spelling', () => {
    const issues = issuesOf(`links:
  - name: l0
    Queues: 2
`);
    expect(issues[0]).toMatchObject({
      line: 3,
      column: 5,
      field: 'links[0].Queues',
      message: expect.stringMatching(/did you mean 'queues'/),
    });
  });

  it('reports YAML syntax errors with their line', () => {
    const issues = issuesOf('links:\n  - name: l0\n   bad indent: [\n');
    expect(issues[0]!.line).toBeGreaterThanOrEqual(2);
    expect(issues[0]!.file).toBe('bad.yaml');
  });

  it('checks references, roles and sizes across the file', () => {
    const issues = issuesOf(`links:
  - name: l0
    queueSize: 100
endpoints:
  - name: a
    link: l1
    role: backend
  - name: b
    link: l0
    role: backend
  - name: c
    link: l0
    role: backend
`);
    const messages = issues.map((i) => `${i.field}: ${i.message}`);
    expect(messages).toContain('links[0].queueSize: must be a power of two with split rings');
    expect(messages).toContain(
      "endpoints[0].link: a uses link 'l1', which is not declared under links (declared: l0)",
    );
    expect(messages.some((m) => m.startsWith('links.l0: has 2 backends (b, c)'))).toBe(true);
    // each points at its own line: the wrong link name, and the link with two back-ends
    expect(issues.find((i) => i.field === 'endpoints[0].link')).toMatchObject({ line: 6, column: 11 });
    expect(issues.find((i) => i.field === 'links.l0')).toMatchObject({ line: 2, column: 11 });
  });

  it('a mistake in a link is reported once, not again at every endpoint that uses the link', () => {
    const issues = issuesOf(`version: 1
links:
  - name: l0
    mode: evnt
endpoints:
  - name: a
    link: l0
    role: backend
containers:
  - name: c1
    endpoint: { link: l0, role: frontend }
`);
    expect(issues.map((i) => `${i.line}:${i.column}: ${i.field}: ${i.message}`)).toEqual([
      '4:11: links[0].mode: must be one of: poll, event (got "evnt")',
    ]);
  });

  it('a DPDK endpoint that wants hugepages without a hugepages section is pointed at', () => {
    const issues = issuesOf(`links:
  - name: l0
endpoints:
  - name: pmd
    kind: dpdk
    link: l0
    role: frontend
    useHugepages: true
`);
    expect(issues).toEqual([
      expect.objectContaining({
        field: 'endpoints[0].useHugepages',
        message: 'needs a hugepages section',
        line: 8,
        column: 19,
      }),
    ]);
  });

  it('rejects socket paths longer than sun_path and relative container paths', () => {
    const issues = issuesOf(`socketDir: /${'x'.repeat(120)}
links:
  - name: l0
containers:
  - name: c1
    rootfs: relative/dir
    endpoint: { link: l0, role: frontend }
`);
    expect(issues.map((i) => i.field)).toEqual(
      expect.arrayContaining(['links[0].socket', 'containers[0].rootfs']),
    );
  });

  it('formats every issue as file:line:column: field: message', () => {
    try {
      parseTopology('links:\n  - name: L0\n', 'topo.yaml');
      throw new Error('accepted');
    } catch (err) {
      expect((err as Error).message).toMatch(/^topo\.yaml:2:11: links\[0\]\.name: 'L0' is not a name/);
    }
  });
});
