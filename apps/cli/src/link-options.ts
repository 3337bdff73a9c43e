/** Options shared by every command that opens a link (endpoint, send, recv, demo). */
import type { OptionSpecs } from './command.js';
import { usageError } from './errors.js';
import type { LinkOptions } from './link.js';
import type { Role } from './topology.js';
import { choiceOption, intOption } from './traffic.js';

export const LINK_OPTIONS = {
  socket: { type: 'string' },
  role: { type: 'string' },
  listen: { type: 'boolean' },
  mode: { type: 'string' },
  ring: { type: 'string' },
  queues: { type: 'string' },
  'queue-size': { type: 'string' },
  timeout: { type: 'string' },
} as const satisfies OptionSpecs;

export const LINK_HELP: Record<string, string> = {
  socket: 'vhost-user socket path (required)',
  role: 'frontend (the virtio driver side) or backend (the vhost device side)',
  listen: 'create the socket and wait for the peer (default: connect to it)',
  mode: 'poll (busy-poll the rings) or event (eventfd kicks; default)',
  ring: 'split (default) or packed virtqueues',
  queues: 'queue pairs to negotiate (default 1)',
  'queue-size': 'descriptors per queue (default 256)',
  timeout: 'seconds to wait for the peer (default 30)',
};

export function linkOptions(
  values: Record<string, unknown>,
  defaultRole: Role,
  signal?: AbortSignal,
): LinkOptions {
  const socket = values.socket;
  if (typeof socket !== 'string' || socket === '') throw usageError('--socket PATH is required');
  if (Buffer.byteLength(socket) > 107) throw usageError(`--socket: '${socket}' is longer than 107 bytes`);
  const ring = choiceOption(values.ring, 'ring', ['split', 'packed'] as const, 'split');
  const queueSize = intOption(values['queue-size'], 'queue-size', 256, 2, 32768);
  if (ring === 'split' && (queueSize & (queueSize - 1)) !== 0)
    throw usageError('--queue-size must be a power of two with split rings');
  return {
    socket,
    role: choiceOption(values.role, 'role', ['frontend', 'backend'] as const, defaultRole),
    listen: values.listen === true,
    mode: choiceOption(values.mode, 'mode', ['poll', 'event'] as const, 'event'),
    ring,
    queues: intOption(values.queues, 'queues', 1, 1, 128),
    queueSize,
    timeoutMs: intOption(values.timeout, 'timeout', 30, 1, 86_400) * 1000,
    ...(signal ? { signal } : {}),
  };
}
