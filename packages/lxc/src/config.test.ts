import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type LxcConfig,
  type MountEntry,
  parseConfig,
  parseMountEntry,
  renderConfig,
  renderMountEntry,
  withoutLayout,
} from './config.js';
import { LxcError } from './errors.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '__fixtures__');
const fixture = (name: string): string => readFileSync(join(fixtures, name), 'utf8');
const fixtureNames = readdirSync(fixtures).filter((f) => f.endsWith('.conf'));

/** Lines of b that are not in a (multiset difference), to check what an edit touched. */
function added(a: string, b: string): string[] {
  const pool = a.split('\n');
  return b.split('\n').filter((l) => {
    const at = pool.indexOf(l);
    if (at < 0) return true;
    pool.splice(at, 1);
    return false;
  });
}

describe('config fixtures round-trip', () => {
  it('has a varied set of fixtures', () => {
    expect(fixtureNames.length).toBeGreaterThanOrEqual(8);
  });

  for (const name of fixtureNames) {
    it(`${name}: render(parse(text)) is the text, and the canonical text parses to the same model`, () => {
      const text = fixture(name);
      const config = parseConfig(text);
      expect(renderConfig(config)).toBe(text);
      const canonical = renderConfig(withoutLayout(config));
      expect(withoutLayout(parseConfig(canonical))).toEqual(withoutLayout(config));
    });
  }

  it('types the busybox template config that lxc-create wrote', () => {
    const c = parseConfig(fixture('busybox-template.conf'));
    expect(c.utsname).toBe('bb1'); // quoted in the file
    expect(c.rootfs?.path).toBe('dir:/var/lib/lxc/bb1/rootfs');
    expect(c.net).toEqual([{ type: 'empty' }]);
    expect(c.signals).toEqual({ halt: 'SIGUSR1', reboot: 'SIGTERM' });
    expect(c.autodev).toBe(true);
    expect(c.tty).toEqual({ max: 5 });
    expect(c.ptyMax).toBe(1);
    expect(c.capDrop).toEqual(['sys_module', 'mac_admin', 'mac_override', 'sys_time']);
    expect(c.mountAuto).toEqual(['cgroup:mixed', 'proc:mixed', 'sys:ro']);
    expect(c.mounts?.[0]).toEqual({
      source: 'shm',
      target: 'dev/shm',
      fstype: 'tmpfs',
      options: ['defaults', 'create=dir'],
      dump: 0,
      pass: 0,
    });
    expect(c.mounts).toHaveLength(7);
    expect(c.extra).toBeUndefined();
  });

  it('types nets, idmaps, cgroup2 and odd spacing (unprivileged.conf)', () => {
    const c = parseConfig(fixture('unprivileged.conf'));
    expect(c.includes).toEqual(['/usr/share/lxc/config/common.conf', '/usr/share/lxc/config/userns.conf']);
    expect(c.idmaps).toEqual([
      { type: 'u', nsid: 0, hostid: 100000, range: 65536 },
      { type: 'g', nsid: 0, hostid: 100000, range: 65536 },
    ]);
    expect(c.utsname).toBe('u1');
    expect(c.net).toEqual([
      {
        type: 'veth',
        link: 'lxcbr0',
        flags: 'up',
        name: 'eth0',
        mtu: 1450,
        vethPair: 'vethU1',
        ipv6: ['fd42::10/64', 'fd42::11/64'],
      },
      { type: 'macvlan', link: 'eno1' },
    ]);
    expect(c.extra).toEqual([{ key: 'lxc.net.1.macvlan.mode', value: 'bridge' }]);
    expect(c.cgroup2).toEqual([
      { key: 'memory.max', value: '512M' },
      { key: 'cpu.max', value: '50000 100000' },
      { key: 'pids.max', value: '256' },
    ]);
    expect(c.tty).toEqual({ max: 2 });
    expect(c.ptyMax).toBe(64);
    expect(c.mountAuto).toEqual(['proc:mixed', 'sys:ro', 'cgroup:rw:force']);
  });

  it('applies LXC semantics: resets, last scalar wins, cgroup order, escaped paths (vipc-endpoint.conf)', () => {
    const c = parseConfig(fixture('vipc-endpoint.conf'));
    expect(c.capDrop).toEqual(['sys_module', 'mac_admin', 'mac_override', 'sys_time']);
    expect(c.tty).toEqual({ max: 0 });
    expect(c.cgroup?.map((s) => s.key)).toEqual([
      'memory.limit_in_bytes',
      'cpuset.cpus',
      'devices.deny',
      'devices.allow',
      'devices.allow',
    ]);
    expect(c.mounts?.[3]).toEqual({
      source: '/srv/data set',
      target: 'mnt/data',
      fstype: 'none',
      options: ['bind', 'ro', 'create=dir', 'optional'],
      dump: 0,
      pass: 0,
    });
    expect(c.environment).toEqual([
      { name: 'VIPC_ROLE', value: 'backend' },
      { name: 'VIPC_SOCKET', value: '/run/vipc/vhost.sock' },
      { name: 'TERM' },
    ]);
    expect(c.extra?.map((e) => e.key)).toEqual(['lxc.hook.pre-start', 'lxc.hook.post-stop']);
    expect(c.log).toEqual({ level: 'DEBUG', file: '/var/log/lxc/endpoint-a.log' });
    expect(c.signals).toEqual({ halt: 'SIGTERM', stop: 'SIGKILL' });
    expect(c.init).toEqual({ cmd: '/sbin/init' });
  });

  it('keeps LXC 2 keys as unknown keys (legacy-lxc2.conf)', () => {
    const c = parseConfig(fixture('legacy-lxc2.conf'));
    expect(c.utsname).toBeUndefined();
    expect(c.extra?.map((e) => e.key)).toContain('lxc.network.type');
    expect(c.extra?.find((e) => e.key === 'lxc.id_map')?.value).toBe('u 0 100000 65536');
    expect(c.capDrop).toEqual(['sys_admin']);
  });

  it('types application container settings (application.conf)', () => {
    const c = parseConfig(fixture('application.conf'));
    expect(c.rootfs).toEqual({
      path: 'dir:/srv/app/rootfs',
      options: 'idmap=container',
      mount: '/usr/lib/x86_64-linux-gnu/lxc/rootfs',
    });
    expect(c.init).toEqual({ cwd: '/app', uid: 1000, gid: 1000 });
    expect(c.autodev).toBe(false);
    expect(c.capKeep).toEqual(['net_bind_service', 'chown']);
    expect(c.mountFstab).toBe('/srv/app/fstab');
    expect(c.net).toEqual([{ type: 'none' }]);
    expect(c.extra?.find((e) => e.key === 'lxc.execute.cmd')?.value).toBe('/usr/bin/node /app/server.mjs');
  });

  const hostConfigs = '/usr/share/lxc/config';
  // Installed by the Debian package lxc; under CI (where lxc is installed) this must run.
  it.skipIf(!existsSync(hostConfigs) && process.env.CI !== 'true')(
    'round-trips the configs LXC installed on this host',
    () => {
      const files = readdirSync(hostConfigs).filter((f) => f.endsWith('.conf'));
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) {
        const text = readFileSync(join(hostConfigs, f), 'utf8');
        expect(renderConfig(parseConfig(text)), f).toBe(text);
      }
    },
  );
});

describe('editing a parsed config touches only the lines concerned', () => {
  it('adds a mount entry right after the existing ones', () => {
    const text = fixture('vipc-endpoint.conf');
    const c = parseConfig(text);
    const entry: MountEntry = {
      source: '/tmp/x',
      target: 'mnt/x',
      fstype: 'none',
      options: ['bind', 'create=dir'],
    };
    c.mounts = [...(c.mounts ?? []), entry];
    const out = renderConfig(c);
    expect(added(text, out)).toEqual(['lxc.mount.entry = /tmp/x mnt/x none bind,create=dir 0 0']);
    const lines = out.split('\n');
    const at = lines.indexOf('lxc.mount.entry = /tmp/x mnt/x none bind,create=dir 0 0');
    expect(lines[at - 1]).toMatch(/^lxc\.mount\.entry = \/srv\/data/);
    expect(withoutLayout(parseConfig(out)).mounts).toEqual(
      [...(withoutLayout(parseConfig(text)).mounts ?? []), { ...entry }].map((m) =>
        parseMountEntry(renderMountEntry(m)),
      ),
    );
  });

  it('changes one scalar in place and keeps the quotes elsewhere', () => {
    const text = fixture('busybox-template.conf');
    const c = parseConfig(text);
    c.tty = { max: 1 };
    const out = renderConfig(c);
    expect(added(text, out)).toEqual(['lxc.tty.max = 1']);
    expect(added(out, text)).toEqual(['lxc.tty.max = 5']);
    expect(out).toContain('lxc.uts.name = "bb1"');
  });

  it('removes values and their lines, keeping comments', () => {
    const text = fixture('vipc-endpoint.conf');
    const c = parseConfig(text);
    delete c.environment;
    c.capDrop = ['mac_admin', 'sys_time'];
    const out = renderConfig(c);
    expect(out).not.toContain('lxc.environment');
    expect(out).toContain('# reset what an include may have added, then drop our own set');
    const back = parseConfig(out);
    expect(back.capDrop).toEqual(['mac_admin', 'sys_time']);
    expect(back.environment).toBeUndefined();
    expect(out.split('\n').filter((l) => l.startsWith('lxc.cap.drop'))).toEqual([
      'lxc.cap.drop =',
      'lxc.cap.drop = mac_admin',
      'lxc.cap.drop = sys_time',
    ]);
  });

  it('appends keys the text did not have, before its final newline', () => {
    const text = fixture('debian-veth.conf');
    const c = parseConfig(text);
    c.apparmorProfile = 'unconfined';
    c.cgroup = [{ key: 'memory.limit_in_bytes', value: '128M' }];
    const out = renderConfig(c);
    expect(out.endsWith('lxc.cgroup.memory.limit_in_bytes = 128M\n')).toBe(true);
    expect(added(text, out)).toEqual([
      'lxc.apparmor.profile = unconfined',
      'lxc.cgroup.memory.limit_in_bytes = 128M',
    ]);
  });

  it('keeps a text without a final newline without one', () => {
    const c = parseConfig(fixture('no-trailing-newline.conf'));
    c.autodev = true;
    expect(renderConfig(c)).toBe('lxc.uts.name = nonl\nlxc.net.0.type = none\nlxc.autodev = 1');
  });
});

describe('config errors', () => {
  const bad: [string, RegExp, number][] = [
    ['lxc.uts.name = a\nthis is not a config line\n', /line 2: .*no "="/, 2],
    ['lxc.uts name = a\n', /line 1: config key/, 1],
    ['lxc.tty.max = many\n', /line 1: lxc.tty.max: .*non-negative integer/, 1],
    ['# c\nlxc.idmap = u 0 100000\n', /line 2: lxc.idmap: an idmap needs/, 2],
    ['lxc.idmap = x 0 1 1\n', /idmap needs/, 1],
    ['lxc.idmap = u 0 1 0\n', /range must be at least 1/, 1],
    ['lxc.mount.entry = /only-two fields\n', /mount entry needs/, 1],
    ['lxc.autodev = maybe\n', /must be 0 or 1/, 1],
    ['lxc.environment = 1BAD=x\n', /not valid/, 1],
    ['lxc.net.0.link = br0\n', /lxc.net.0 has settings but no type/, -1],
    ['lxc.net.0.type = veth\nlxc.net.0.mtu = 99999999999\n', /line 2: .*mtu/, 2],
  ];
  for (const [text, message, line] of bad) {
    it(`rejects ${JSON.stringify(text.trim().split('\n').pop())}`, () => {
      try {
        parseConfig(text);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(LxcError);
        expect((e as LxcError).code).toBe('INVALID_CONFIG');
        expect((e as LxcError).message).toMatch(message);
        if (line > 0) expect((e as LxcError).line).toBe(line);
      }
    });
  }

  it('rejects NUL bytes and non-strings', () => {
    expect(() => parseConfig('lxc.uts.name = a\0b')).toThrow(/NUL/);
    expect(() => parseConfig(42 as unknown as string)).toThrow(LxcError);
  });

  it('refuses to render values that would inject lines or break fields', () => {
    expect(() => renderConfig({ utsname: 'a\nlxc.cap.drop = x' })).toThrow(/line breaks/);
    expect(() => renderConfig({ environment: [{ name: 'A B', value: 'x' }] })).toThrow(/not valid/);
    expect(() => renderConfig({ capDrop: ['two words'] })).toThrow(/one word/);
    expect(() => renderConfig({ tty: { max: -1 } })).toThrow(/unsigned/);
    expect(() => renderConfig({ extra: [{ key: 'lxc.uts.name', value: 'x' }] })).toThrow(/typed field/);
    expect(() => renderConfig({ cgroup: [{ key: 'dir', value: 'x' }] })).toThrow(/controller/);
    expect(() => renderConfig({ net: [{ type: 'empty' }, { index: 0, type: 'none' }] })).toThrow(/index 0/);
    expect(() => renderMountEntry({ source: '', target: 'a', fstype: 'none', options: [] })).toThrow(
      /source/,
    );
    expect(() =>
      renderMountEntry({ source: '/a', target: 'a', fstype: 'none', options: ['ro,bind'] }),
    ).toThrow(/comma/);
  });
});

// ---------------------------------------------------------------- properties

const word = fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/);
const pathArb = fc
  .array(fc.stringMatching(/^[a-zA-Z0-9._ \t\\-]{1,8}$/), { minLength: 1, maxLength: 4 })
  .map((p) => `/${p.join('/')}`);
// Any value without a line break or NUL: spaces at the ends and quotes must survive (the renderer quotes).
const valueArb = fc.string({
  maxLength: 20,
  unit: fc.constantFrom('a', 'Z', '0', ' ', '\t', '"', "'", '=', '#', '\\', '\v', 'é', '\u00a0'),
});
const mountArb: fc.Arbitrary<MountEntry> = fc.record({
  source: pathArb,
  target: pathArb.map((p) => p.slice(1)),
  fstype: fc.constantFrom('none', 'tmpfs', 'proc', 'hugetlbfs'),
  options: fc.array(fc.constantFrom('bind', 'ro', 'create=dir', 'create=file', 'optional', 'nosuid'), {
    minLength: 1,
    maxLength: 4,
  }),
  dump: fc.constant(0),
  pass: fc.nat(2),
});

const configArb: fc.Arbitrary<LxcConfig> = fc
  .record(
    {
      includes: fc.array(pathArb, { minLength: 1, maxLength: 2 }),
      arch: fc.constantFrom('linux64', 'amd64', 'aarch64'),
      utsname: word,
      rootfs: fc.record({ path: pathArb.map((p) => `dir:${p}`) }),
      net: fc.array(
        fc.record(
          {
            type: fc.constantFrom('empty', 'none', 'veth', 'macvlan'),
            link: word,
            mtu: fc.integer({ min: 68, max: 9000 }),
            ipv4: fc.array(fc.constantFrom('10.0.3.2/24', '10.0.3.3/24'), { minLength: 1, maxLength: 2 }),
          },
          { requiredKeys: ['type'] },
        ),
        { minLength: 1, maxLength: 3 },
      ),
      mountAuto: fc.array(fc.constantFrom('proc:mixed', 'sys:ro', 'cgroup:mixed'), {
        minLength: 1,
        maxLength: 3,
      }),
      mounts: fc.array(mountArb, { minLength: 1, maxLength: 4 }),
      capDrop: fc.array(fc.constantFrom('sys_module', 'mac_admin', 'sys_time', 'net_raw'), {
        minLength: 1,
        maxLength: 4,
      }),
      cgroup: fc.array(
        fc.record({
          key: fc.constantFrom('memory.limit_in_bytes', 'cpuset.cpus', 'devices.allow', 'devices.deny'),
          value: valueArb,
        }),
        { minLength: 1, maxLength: 4 },
      ),
      cgroup2: fc.array(fc.record({ key: fc.constantFrom('memory.max', 'pids.max'), value: valueArb }), {
        minLength: 1,
        maxLength: 2,
      }),
      idmaps: fc.array(
        fc.record({
          type: fc.constantFrom('u' as const, 'g' as const, 'b' as const),
          nsid: fc.nat(1000),
          hostid: fc.nat(200000),
          range: fc.integer({ min: 1, max: 65536 }),
        }),
        { minLength: 1, maxLength: 2 },
      ),
      init: fc.record({ cmd: pathArb, uid: fc.nat(65535) }, { requiredKeys: [] }),
      signals: fc.record(
        { halt: fc.constantFrom('SIGTERM', 'SIGPWR'), stop: fc.constant('SIGKILL') },
        { requiredKeys: [] },
      ),
      autodev: fc.boolean(),
      tty: fc.record({ max: fc.nat(8) }),
      ptyMax: fc.nat(1024),
      start: fc.record({ auto: fc.boolean(), delay: fc.nat(30) }, { requiredKeys: [] }),
      environment: fc.array(
        fc.record(
          { name: fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,6}$/), value: valueArb },
          { requiredKeys: ['name'] },
        ),
        {
          minLength: 1,
          maxLength: 3,
        },
      ),
      apparmorProfile: fc.constantFrom('unconfined', 'generated'),
      extra: fc.array(
        fc.record({
          key: fc.constantFrom(
            'lxc.hook.pre-start',
            'lxc.console.path',
            'lxc.seccomp.profile',
            'lxc.net.0.script.up',
          ),
          value: valueArb,
        }),
        {
          minLength: 1,
          maxLength: 3,
        },
      ),
    },
    { requiredKeys: [] },
  )
  .map((c) => {
    // Empty nested records are not representable in a config text.
    for (const k of ['init', 'signals', 'start'] as const)
      if (c[k] && Object.keys(c[k] as object).length === 0) delete c[k];
    return c;
  });

const NUM_RUNS = 300;

describe('config properties', () => {
  it('parse(render(config)) is the config', () => {
    fc.assert(
      fc.property(configArb, (c) => {
        expect(withoutLayout(parseConfig(renderConfig(c)))).toEqual(c);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  /** A config text with comments, blank lines and odd spacing around the canonical lines. */
  const decoratedText = fc
    .tuple(
      configArb,
      fc.array(fc.constantFrom('# a comment', '', '   ', '#lxc.uts.name = x', '\t# tabbed'), {
        maxLength: 30,
      }),
      fc.infiniteStream(fc.constantFrom(' = ', '=', '   =  ')),
      fc.nat(),
    )
    .map(([c, decorations, seps, seed]) => {
      const lines = renderConfig(c).split('\n').slice(0, -1);
      const it = seps[Symbol.iterator]();
      const spaced = lines.map((l) => l.replace(' = ', it.next().value as string));
      let s = seed;
      for (const d of decorations) {
        s = (s * 1103515245 + 12345) % 2147483648;
        spaced.splice(s % (spaced.length + 1), 0, d);
      }
      return `${spaced.join('\n')}\n`;
    });

  it('render(parse(text)) is the text, for texts with comments and odd spacing', () => {
    fc.assert(
      fc.property(decoratedText, (text) => {
        expect(renderConfig(parseConfig(text))).toBe(text);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('after any edit of the typed model, the rendered text parses to the edited model and keeps every comment', () => {
    fc.assert(
      fc.property(
        decoratedText,
        configArb,
        fc.array(
          fc.constantFrom(
            ...(Object.keys({
              includes: 1,
              utsname: 1,
              net: 1,
              mounts: 1,
              capDrop: 1,
              cgroup: 1,
              idmaps: 1,
              environment: 1,
              extra: 1,
              tty: 1,
              mountAuto: 1,
              init: 1,
            }) as (keyof LxcConfig)[]),
          ),
          { maxLength: 6 },
        ),
        (text, other, keys) => {
          const c = parseConfig(text);
          for (const k of keys) {
            // replace the field by another config's value (or remove it)
            (c as Record<string, unknown>)[k] = other[k];
            if (other[k] === undefined) delete (c as Record<string, unknown>)[k];
          }
          const out = renderConfig(c);
          expect(withoutLayout(parseConfig(out))).toEqual(withoutLayout(c));
          const comments = (t: string) => t.split('\n').filter((l) => l.trim().startsWith('#'));
          expect(comments(out)).toEqual(comments(text));
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it('survives a bounded fuzz run: any text parses or fails with INVALID_CONFIG', () => {
    const pieces = fc.constantFrom(
      'lxc.',
      'net.',
      '0.',
      'type',
      'mount.entry',
      'idmap',
      'cap.drop',
      'cgroup.',
      'memory.max',
      ' = ',
      '=',
      '#',
      '\n',
      ' ',
      '"',
      "'",
      'u 0 1 2',
      '/a b c d',
      'x',
      '1',
      '',
    );
    const texts = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.array(pieces, { maxLength: 60 }).map((a) => a.join('')),
    );
    const deadline = Date.now() + 10_000;
    fc.assert(
      fc.property(texts, (text) => {
        if (Date.now() > deadline) return;
        try {
          const c = parseConfig(text);
          expect(renderConfig(c)).toBe(text);
        } catch (e) {
          expect(e).toBeInstanceOf(LxcError);
          expect((e as LxcError).code).toBe('INVALID_CONFIG');
        }
      }),
      { numRuns: 3000 },
    );
  });
});
