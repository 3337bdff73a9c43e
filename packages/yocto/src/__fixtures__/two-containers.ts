/** apps/cli's __fixtures__/topologies/two-containers.yaml, as the CLI's parseTopology returns it. */
export const TWO_CONTAINERS_CLI = {
  version: 1 as const,
  name: 'two-containers',
  socketDir: '/run/vipc',
  hugepages: { pageSize: '2M' as const, count: 64, mount: '/dev/hugepages' },
  links: [
    { name: 'a', socket: '/run/vipc/a.sock', queues: 1, queueSize: 512, ring: 'packed' as const, mode: 'poll' as const },
    { name: 'b', socket: '/run/vipc/b.sock', queues: 1, queueSize: 256, ring: 'split' as const, mode: 'event' as const },
  ],
  endpoints: [
    { name: 'sink-a', endpoint: { kind: 'vipc' as const, link: 'a', role: 'backend' as const, action: 'sink' as const } },
    {
      name: 'pmd-b',
      endpoint: {
        kind: 'dpdk' as const,
        link: 'b',
        role: 'backend' as const,
        app: 'testpmd' as const,
        forwardMode: 'rxonly' as const,
        memoryMb: 256,
        useHugepages: true,
      },
    },
  ],
  containers: [
    {
      name: 'producer-a',
      rootfs: 'node',
      mounts: [{ source: '/srv/data', target: '/data', readOnly: true }],
      memoryLimitMb: 256,
      endpoint: { kind: 'vipc' as const, link: 'a', role: 'frontend' as const, action: 'source' as const },
    },
    {
      name: 'producer-b',
      rootfs: '/var/lib/vipc/rootfs',
      mounts: [],
      memoryLimitMb: undefined,
      endpoint: { kind: 'vipc' as const, link: 'b', role: 'frontend' as const, action: 'source' as const },
    },
  ],
};

