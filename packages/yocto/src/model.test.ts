import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lintLayer } from './bitbake/check.js';
import { RELEASES } from './defs.js';
import { renderLayer } from './emit.js';
import { YoctoError } from './errors.js';
import type { YoctoTopology } from './model.js';

const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);

/** Valid-looking topologies: every link gets a back-end and a front-end, on the host or in a container. */
const topology: fc.Arbitrary<YoctoTopology> = fc
  .record({
    links: fc.uniqueArray(name, { minLength: 1, maxLength: 4 }),
    hugepages: fc.option(
      fc.record({
        pageSize: fc.constantFrom('2M' as const, '1G' as const),
        count: fc.integer({ min: 1, max: 4096 }),
      }),
      {
        nil: undefined,
      },
    ),
    dpdk: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    hostFrontend: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    packages: fc.array(fc.constantFrom('htop', 'strace', 'iproute2'), { maxLength: 2 }),
  })
  .map(({ links, hugepages, dpdk, hostFrontend, packages }) => {
    const t: YoctoTopology = {
      name: 'prop',
      socketDir: '/run/vipc',
      hugepages: hugepages ? { ...hugepages, mount: '/dev/hugepages' } : undefined,
      links: links.map((l) => ({
        name: l,
        socket: `/run/vipc/${l}.sock`,
        queues: 1,
        queueSize: 256,
        ring: 'split',
        mode: 'event',
      })),
      endpoints: [],
      containers: [],
    };
    links.forEach((l, i) => {
      const hostRole = hostFrontend[i] ? 'frontend' : 'backend';
      const guestRole = hostFrontend[i] ? 'backend' : 'frontend';
      t.endpoints.push({
        name: `h-${l}`,
        endpoint:
          dpdk[i] && hugepages
            ? {
                kind: 'dpdk',
                link: l,
                role: hostRole,
                app: 'testpmd',
                forwardMode: 'io',
                memoryMb: 128,
                useHugepages: true,
              }
            : { kind: 'vipc', link: l, role: hostRole, action: 'echo' },
      });
      t.containers.push({
        name: `c-${l}`,
        packages,
        mounts: [],
        memoryLimitMb: undefined,
        autostart: i % 2 === 0,
        endpoint: { kind: 'vipc', link: l, role: guestRole, action: 'source' },
      });
    });
    return t;
  });

describe('emitter properties', () => {
  it('any valid topology, any release and init system: the layer passes the lint, deterministically', () => {
    fc.assert(
      fc.property(
        topology,
        fc.constantFrom(...RELEASES),
        fc.constantFrom('systemd' as const, 'sysvinit' as const),
        fc.boolean(),
        (t, release, initSystem, physicalNics) => {
          const a = renderLayer(t, { release, initSystem, physicalNics });
          const b = renderLayer(structuredClone(t), { release, initSystem, physicalNics });
          expect(a).toEqual(b);
          expect(lintLayer(a, { release, gateOverride: 'vipc' })).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  });

  // (undefined is the default topology, not junk)
  it('malformed input of any shape gives a YoctoError naming the field, never a TypeError', () => {
    fc.assert(
      fc.property(
        fc.anything().filter((v) => v !== undefined),
        (junk) => {
          try {
            renderLayer(junk as YoctoTopology);
          } catch (err) {
            expect(err).toBeInstanceOf(YoctoError);
            expect((err as YoctoError).code).toBe('INVALID_TOPOLOGY');
            expect((err as YoctoError).issues.length).toBeGreaterThan(0);
            return;
          }
          throw new Error('junk was accepted');
        },
      ),
      { numRuns: 500 },
    );
  });
});
