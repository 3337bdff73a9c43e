import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appVersion, discoverDpdk, pmdLibraryOf } from './index.js';
import { testpmdAvailable } from './test-peer.js';

const have = testpmdAvailable();

describe('discovery', () => {
  it('reports absence with the Debian package to install', () => {
    const empty = mkdtempSync(join(tmpdir(), 'vipc-nodpdk-'));
    try {
      const d = discoverDpdk({ path: empty, standardDirs: false });
      expect(d.installed).toBe(false);
      if (d.installed) return;
      expect(d.package).toBe('dpdk-dev');
      expect(d.message).toMatch(/apt-get install -y dpdk-dev/);
      expect(d.searched).toEqual([empty]);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it.skipIf(!have)(
    'finds testpmd, its version (pkg-config and the app agree) and the vhost/virtio PMDs',
    () => {
      const d = discoverDpdk();
      expect(d.installed).toBe(true);
      if (!d.installed) return;
      expect(d.testpmd).toMatch(/\/dpdk-testpmd$/);
      expect(d.apps['dpdk-testpmd']).toBe(d.testpmd);
      expect(d.version).toMatch(/^\d+\.\d+/);
      expect(appVersion(d.testpmd)).toBe(d.version);
      expect(d.pmds).toEqual(
        expect.arrayContaining([pmdLibraryOf('net_vhost'), pmdLibraryOf('net_virtio_user'), 'net_null']),
      );
    },
  );
});
