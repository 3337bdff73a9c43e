/**
 * The one place the CLI touches a vhost-user link: open one end of it and
 * exchange messages. Everything above (demo, send, recv, up's endpoints) sees
 * only `MessageLink`.
 */
import { CliError } from './errors.js';
import type { Role } from './topology.js';

export interface LinkOptions {
  socket: string;
  role: Role;
  /** Create the socket (server) instead of connecting to it. */
  listen: boolean;
  mode: 'poll' | 'event';
  ring: 'split' | 'packed';
  queues: number;
  queueSize: number;
  signal?: AbortSignal;
  /** How long to keep trying to connect / to wait for the peer (ms). */
  timeoutMs: number;
}

export interface MessageLink extends AsyncIterable<Uint8Array> {
  /** Queues one message; resolves once the ring took it (waits while the ring is full). */
  send(message: Uint8Array): Promise<void>;
  /** Largest message the link carries. */
  readonly maxMessageSize: number;
  close(): Promise<void>;
}

/** Opens one end of a vhost-user link; resolves when the link is up (negotiation done). */
export async function openLink(options: LinkOptions): Promise<MessageLink> {
  void options;
  throw new CliError(
    'PEER_MISSING',
    'the vhost-user message API is not available in this build',
    'build it: pnpm --filter @vipc/vhost-user build',
  );
}
