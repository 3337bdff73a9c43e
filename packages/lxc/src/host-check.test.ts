import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { checkHost, type Finding, parseKernelConfig } from './host-check.js';
import { lxcUnavailable, mustRun } from './test-support.js';

const byId = (findings: Finding[], id: string): Finding => {
  const f = findings.find((x) => x.id === id);
  if (!f) throw new Error(`no finding ${id} in ${findings.map((x) => x.id).join(', ')}`);
  return f;
};

describe('parseKernelConfig', () => {
  it('reads set, module and unset options', () => {
    const m = parseKernelConfig('CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D="x y"\n# comment\n');
    expect([...m]).toEqual([
      ['CONFIG_A', 'y'],
      ['CONFIG_B', 'm'],
      ['CONFIG_C', 'n'],
      ['CONFIG_D', '"x y"'],
    ]);
  });
});

describe('checkHost on a host that lacks things (fake /proc and /sys)', () => {
  const root = mkdtempSync(join(tmpdir(), `vipc-lxc-hostcheck-${process.pid}-`));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const proc = join(root, 'proc');
  const sys = join(root, 'sys');
  mkdirSync(join(proc, 'self/ns'), { recursive: true });
  for (const ns of ['mnt', 'uts', 'ipc', 'net']) writeFileSync(join(proc, 'self/ns', ns), '');
  mkdirSync(join(proc, 'sys/user'), { recursive: true });
  writeFileSync(join(proc, 'sys/user/max_user_namespaces'), '0\n');
  writeFileSync(
    join(proc, 'self/mountinfo'),
    '25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n26 1 0:23 / /dev/shm rw - tmpfs tmpfs rw\n',
  );
  writeFileSync(
    join(proc, 'config.gz'),
    gzipSync('CONFIG_NAMESPACES=y\nCONFIG_UTS_NS=y\n# CONFIG_PID_NS is not set\nCONFIG_UNIX=y\n'),
  );
  mkdirSync(sys, { recursive: true });

  const report = checkHost({
    procRoot: proc,
    sysRoot: sys,
    toolPath: join(root, 'no-bin'),
    busybox: '/bin/sh',
    lxcpath: join(root, 'lxc'),
  });

  it('fails, and each finding that is not ok says how to fix it', () => {
    expect(report.ok).toBe(false);
    for (const f of report.findings) {
      if (f.status !== 'ok') expect(f.fix, f.id).toMatch(/\S/);
    }
  });

  it('names the missing tools and packages', () => {
    expect(byId(report.findings, 'tools.lxc')).toMatchObject({
      status: 'fail',
      fix: 'apt-get install -y lxc',
    });
    expect(byId(report.findings, 'tools.busybox')).toMatchObject({
      status: 'warn',
      fix: 'apt-get install -y busybox-static',
    });
  });

  it('finds the missing namespaces, the user namespace limit and the unset kernel options', () => {
    expect(byId(report.findings, 'namespace.pid')).toMatchObject({
      status: 'fail',
      fix: 'use a kernel built with CONFIG_PID_NS=y',
    });
    expect(byId(report.findings, 'namespace.user').status).toBe('warn');
    expect(byId(report.findings, 'namespace.uts').status).toBe('ok');
    expect(byId(report.findings, 'namespace.user.max')).toMatchObject({
      status: 'warn',
      fix: 'sysctl -w user.max_user_namespaces=15000',
    });
    expect(report.kernelConfigSource).toBe(join(proc, 'config.gz'));
    expect(byId(report.findings, 'kernel.CONFIG_PID_NS')).toMatchObject({ status: 'fail' });
    expect(byId(report.findings, 'kernel.CONFIG_PID_NS').detail).toMatch(/not set/);
    expect(byId(report.findings, 'kernel.CONFIG_CGROUPS').detail).toMatch(/missing/);
    expect(byId(report.findings, 'kernel.CONFIG_VETH').status).toBe('warn');
    expect(byId(report.findings, 'kernel.CONFIG_UNIX').status).toBe('ok');
  });

  it('sees a unified cgroup tree without controllers, no AppArmor, no bridge, no hugepages', () => {
    expect(report.cgroupLayout).toBe('unified');
    expect(byId(report.findings, 'cgroup.controller.memory').status).toBe('warn');
    expect(byId(report.findings, 'security.apparmor').fix).toMatch(/lxc.apparmor.profile = unconfined/);
    expect(byId(report.findings, 'network.lxcbr0').fix).toMatch(/lxc.net.0.type = empty/);
    expect(byId(report.findings, 'ipc.hugepages').status).toBe('warn');
    expect(byId(report.findings, 'ipc.dev-shm').status).toBe('ok');
  });

  it('falls back to /boot/config-<release>, and warns when there is no kernel config at all', () => {
    const boot = join(root, 'boot');
    mkdirSync(boot, { recursive: true });
    writeFileSync(join(boot, 'config-9.9.9-test'), 'CONFIG_VETH=y\n');
    const noGz = join(root, 'proc2');
    mkdirSync(noGz, { recursive: true });
    const fromBoot = checkHost({ procRoot: noGz, sysRoot: sys, bootDir: boot, kernelRelease: '9.9.9-test' });
    expect(fromBoot.kernelConfigSource).toBe(join(boot, 'config-9.9.9-test'));
    expect(byId(fromBoot.findings, 'kernel.CONFIG_VETH').status).toBe('ok');
    const none = checkHost({ procRoot: noGz, sysRoot: sys, bootDir: boot, kernelRelease: 'other' });
    expect(none.kernelConfigSource).toBeUndefined();
    expect(byId(none.findings, 'kernel.config')).toMatchObject({ status: 'warn' });
    expect(byId(none.findings, 'cgroup.layout').status).toBe('fail');
  });
});

const missing = lxcUnavailable();
describe.skipIf(missing !== undefined && !mustRun)('checkHost on this host (where the LXC tests run)', () => {
  it('finds nothing that fails, reads the kernel config and the cgroup layout', () => {
    const report = checkHost();
    const failed = report.findings.filter((f) => f.status === 'fail');
    expect(failed).toEqual([]);
    expect(report.ok).toBe(true);
    expect(byId(report.findings, 'tools.lxc').detail).toMatch(/^lxc-start \d+\.\d+/);
    for (const ns of ['mnt', 'uts', 'ipc', 'pid', 'net'])
      expect(byId(report.findings, `namespace.${ns}`).status).toBe('ok');
    expect(report.cgroupLayout).not.toBe('none');
    if (existsSync('/proc/config.gz')) expect(report.kernelConfigSource).toBe('/proc/config.gz');
    for (const f of report.findings) if (f.status !== 'ok') expect(f.fix, f.id).toMatch(/\S/);
  });
});
