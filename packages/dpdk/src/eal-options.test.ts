import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildEalArgs,
  buildTestpmdArgv,
  checkEalOptions,
  DpdkError,
  type EalOptions,
  formatVdev,
  parseCoreList,
} from './index.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof DpdkError) return e.code;
    throw e;
  }
  return undefined;
}

describe('buildTestpmdArgv', () => {
  it('reproduces the tested vhost back-end command line of PEERS.md', () => {
    expect(
      buildTestpmdArgv(
        {
          lcores: [0, 1],
          mainLcore: 1,
          memoryChannels: 1,
          filePrefix: 'pa',
          noPci: true,
          noHuge: true,
          memoryMb: 256,
          vdevs: [{ driver: 'net_vhost', iface: '/tmp/vhu1.sock', queues: 1 }],
        },
        { nbCores: 1, forwardMode: 'rxonly', totalNumMbufs: 16384, statsPeriod: 1 },
      ),
    ).toEqual([
      '-l',
      '0,1',
      '--main-lcore',
      '1',
      '-n',
      '1',
      '-m',
      '256',
      '--no-huge',
      '--file-prefix=pa',
      '--no-pci',
      '--vdev',
      'net_vhost0,iface=/tmp/vhu1.sock,queues=1',
      '--',
      '--forward-mode=rxonly',
      '--nb-cores=1',
      '--total-num-mbufs=16384',
      '--stats-period=1',
    ]);
  });

  it('builds virtio-user devargs with every typed key, booleans as 0/1', () => {
    expect(
      formatVdev({
        driver: 'net_virtio_user',
        id: 3,
        path: '/run/vipc/a.sock',
        queues: 2,
        queueSize: 1024,
        server: true,
        mrgRxbuf: false,
        inOrder: true,
        packedVq: true,
        vectorized: false,
        mac: '02:00:00:00:00:01',
      }),
    ).toBe(
      'net_virtio_user3,path=/run/vipc/a.sock,queues=2,queue_size=1024,server=1,mrg_rxbuf=0,in_order=1,packed_vq=1,vectorized=0,mac=02:00:00:00:00:01',
    );
    expect(
      formatVdev({
        driver: 'net_vhost',
        iface: '/s',
        client: true,
        iommuSupport: true,
        postcopySupport: false,
        tso: true,
        linearBuffer: true,
        extBuffer: false,
      }),
    ).toBe(
      'net_vhost0,iface=/s,client=1,iommu-support=1,postcopy-support=0,tso=1,linear-buffer=1,ext-buffer=0',
    );
  });

  it('maps --lcores groups, log levels, iova mode, allow lists and hugepage options', () => {
    expect(
      buildEalArgs({
        lcoreMap: [
          { lcore: 0, cpus: 0 },
          { lcore: [1, 2], cpus: [0, 1] },
        ],
        mainLcore: 0,
        socketMemMb: [128, 0],
        singleFileSegments: true,
        hugeDir: '/dev/hugepages',
        allow: ['0000:00:04.0'],
        logLevel: ['lib.eal:debug', 7],
        iovaMode: 'va',
        noTelemetry: true,
        inMemory: true,
      }),
    ).toEqual([
      '--lcores',
      '0@0,(1,2)@(0,1)',
      '--main-lcore',
      '0',
      '--socket-mem',
      '128,0',
      '--in-memory',
      '--single-file-segments',
      '--huge-dir',
      '/dev/hugepages',
      '-a',
      '0000:00:04.0',
      '--log-level=lib.eal:debug',
      '--log-level=7',
      '--iova-mode=va',
      '--no-telemetry',
    ]);
  });

  it('parses DPDK core lists', () => {
    expect(parseCoreList('0-2,5, 7')).toEqual([0, 1, 2, 5, 7]);
    expect(codeOf(() => parseCoreList('2-1'))).toBe('INVALID_OPTION');
    expect(codeOf(() => parseCoreList('a'))).toBe('INVALID_OPTION');
  });
});

describe('validation names the problem', () => {
  const cases: [string, EalOptions, RegExp, string][] = [
    [
      'single-file-segments + huge-unlink',
      { singleFileSegments: true, hugeUnlink: true },
      /--single-file-segments with --huge-unlink/,
      'CONFLICTING_OPTIONS',
    ],
    [
      'virtio-user on hugepages without single files',
      { vdevs: [{ driver: 'net_virtio_user', path: '/s' }] },
      /needs --single-file-segments \(or --no-huge\)/,
      'CONFLICTING_OPTIONS',
    ],
    [
      'virtio-user with --in-memory alone',
      { inMemory: true, vdevs: [{ driver: 'net_virtio_user', path: '/s' }] },
      /Too many memory regions/,
      'CONFLICTING_OPTIONS',
    ],
    [
      'both vdevs of one socket on one command line',
      {
        noHuge: true,
        vdevs: [
          { driver: 'net_vhost', iface: '/s' },
          { driver: 'net_virtio_user', id: 1, path: '/s' },
        ],
      },
      /port attach/,
      'CONFLICTING_OPTIONS',
    ],
    [
      '-m with --socket-mem',
      { memoryMb: 64, socketMemMb: [64] },
      /-m and --socket-mem/,
      'CONFLICTING_OPTIONS',
    ],
    [
      '--no-huge with --socket-mem',
      { noHuge: true, socketMemMb: [64] },
      /--socket-mem cannot be used with --no-huge/,
      'CONFLICTING_OPTIONS',
    ],
    [
      '--no-huge with --huge-unlink',
      { noHuge: true, hugeUnlink: 'always' },
      /--huge-unlink cannot be used with --no-huge/,
      'CONFLICTING_OPTIONS',
    ],
    [
      'allow and block',
      { allow: ['0000:00:01.0'], block: ['0000:00:02.0'] },
      /allow \(-a\) and block \(-b\)/,
      'CONFLICTING_OPTIONS',
    ],
    [
      'main lcore outside the list',
      { lcores: [0, 1], mainLcore: 5 },
      /--main-lcore 5 is not among the enabled lcores \(0,1\)/,
      'CONFLICTING_OPTIONS',
    ],
    ['file prefix with a slash', { filePrefix: 'a/b' }, /--file-prefix "a\/b"/, 'INVALID_OPTION'],
    [
      'devarg value with a comma',
      { noHuge: true, vdevs: [{ driver: 'net_vhost', iface: '/a,b' }] },
      /iface="\/a,b" is empty or contains a comma/,
      'INVALID_OPTION',
    ],
    [
      'queue_size not a power of two',
      { noHuge: true, vdevs: [{ driver: 'net_virtio_user', path: '/s', queueSize: 1000 }] },
      /queue_size=1000 must be a power of two/,
      'INVALID_OPTION',
    ],
    [
      'bad MAC',
      { noHuge: true, vdevs: [{ driver: 'net_virtio_user', path: '/s', mac: 'zz' }] },
      /mac="zz" is not a MAC/,
      'INVALID_OPTION',
    ],
    [
      'duplicate device',
      {
        noHuge: true,
        vdevs: [
          { driver: 'net_vhost', iface: '/a' },
          { driver: 'net_vhost', iface: '/b' },
        ],
      },
      /net_vhost0 appears twice/,
      'INVALID_OPTION',
    ],
    ['negative memory', { memoryMb: -1 }, /-m -1: must be an integer/, 'INVALID_OPTION'],
    ['bad iova mode', { iovaMode: 'xx' as 'va' }, /--iova-mode "xx"/, 'INVALID_OPTION'],
  ];
  for (const [name, opts, msg, code] of cases) {
    it(name, () => {
      expect(
        checkEalOptions(opts)
          .map((p) => p.message)
          .join('\n'),
      ).toMatch(msg);
      let err: DpdkError | undefined;
      try {
        buildEalArgs(opts);
      } catch (e) {
        err = e as DpdkError;
      }
      expect(err).toBeInstanceOf(DpdkError);
      expect(err!.code).toBe(code);
      expect(err!.message).toMatch(msg);
    });
  }

  it('testpmd: fewer than 2 lcores, too many forwarding cores, bad mode, tiny txpkts', () => {
    expect(() => buildTestpmdArgv({ lcores: [0] }, {})).toThrow(/at least 2 lcores/);
    expect(() => buildTestpmdArgv({ lcores: '0-1' }, { nbCores: 2 })).toThrow(
      /--nb-cores=2 exceeds the 1 forwarding/,
    );
    expect(() => buildTestpmdArgv({}, { forwardMode: 'fast' as 'io' })).toThrow(
      /--forward-mode=fast: not a testpmd forwarding mode/,
    );
    expect(() => buildTestpmdArgv({}, { txpkts: [20, 10] })).toThrow(/--txpkts total 30 is below 42/);
    expect(() => buildTestpmdArgv({}, { burst: 0 })).toThrow(/--burst=0/);
    expect(() => buildTestpmdArgv({}, { interactive: true, statsPeriod: 1 })).toThrow(
      /--stats-period only works without -i/,
    );
  });

  it('a valid option set has no problems (the working recipes)', () => {
    expect(
      checkEalOptions({
        singleFileSegments: true,
        inMemory: true,
        vdevs: [{ driver: 'net_virtio_user', path: '/s' }],
      }),
    ).toEqual([]);
    expect(
      checkEalOptions({
        noHuge: true,
        vdevs: [
          { driver: 'net_virtio_user', path: '/s', server: true },
          { driver: 'net_vhost', iface: '/s', client: true },
        ],
      }),
    ).toEqual([]);
  });

  it('property: any devargs path without separators round-trips into one --vdev argument', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^\/[A-Za-z0-9_./-]{1,60}$/),
        fc.integer({ min: 1, max: 16 }),
        (path, queues) => {
          const args = buildEalArgs({ noHuge: true, vdevs: [{ driver: 'net_virtio_user', path, queues }] });
          const v = args[args.indexOf('--vdev') + 1]!;
          const kv = Object.fromEntries(
            v
              .split(',')
              .slice(1)
              .map((p) => p.split('=')),
          );
          expect(kv).toEqual({ path, queues: String(queues) });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('property: checkEalOptions never throws on arbitrary input, buildEalArgs throws only DpdkError', () => {
    const anyOpts = fc.record(
      {
        lcores: fc.oneof(
          fc.array(fc.integer({ min: -2, max: 2000 }), { maxLength: 4 }),
          fc.string({ maxLength: 8 }),
        ),
        mainLcore: fc.integer({ min: -1, max: 4 }),
        memoryMb: fc.integer({ min: -1, max: 4096 }),
        noHuge: fc.boolean(),
        singleFileSegments: fc.boolean(),
        hugeUnlink: fc.boolean(),
        filePrefix: fc.string({ maxLength: 10 }),
        vdevs: fc.array(
          fc.oneof(
            fc.record({
              driver: fc.constant('net_vhost' as const),
              iface: fc.string({ maxLength: 12 }),
              queues: fc.integer({ min: -1, max: 3000 }),
            }),
            fc.record({
              driver: fc.constant('net_virtio_user' as const),
              path: fc.string({ maxLength: 12 }),
              queueSize: fc.integer({ min: 0, max: 70000 }),
            }),
          ),
          { maxLength: 3 },
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(anyOpts, (o) => {
        const problems = checkEalOptions(o as EalOptions);
        try {
          buildEalArgs(o as EalOptions);
          expect(problems).toEqual([]);
        } catch (e) {
          expect(e).toBeInstanceOf(DpdkError);
          expect(problems.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500 },
    );
  });
});
