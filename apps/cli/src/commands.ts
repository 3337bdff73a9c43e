import type { CommandSpec } from './command.js';

const json = { type: 'boolean' } as const;

/** Every command, declared once; each module is imported only when its command runs. */
export const COMMANDS: CommandSpec[] = [
  {
    name: 'doctor',
    summary: 'check the kernel, hugepages, DPDK, LXC and permissions; each finding comes with its fix',
    usage: 'vipc doctor [--json]',
    help: { json: 'print one JSON document with every finding' },
    options: { json },
    examples: ['vipc doctor', 'vipc doctor --json | jq ".findings[] | select(.status != \\"ok\\")"'],
    load: () => import('./commands/doctor.js'),
  },
  {
    name: 'validate',
    summary: 'check a topology file and print what it describes',
    usage: 'vipc validate FILE [--json]',
    help: { json: 'print the normalised topology as JSON' },
    options: { json },
    positionals: { min: 1, max: 1 },
    examples: ['vipc validate topology.yaml'],
    load: () => import('./commands/validate.js'),
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}
