/**
 * Ready-made message endpoints: a vipc back-end that listens (server) and a
 * vipc front-end that connects (client), each with a MessageChannel.
 */
import { VhostUserBackend } from './backend.js';
import { type ChannelOptions, deviceEndpoint, driverEndpoint, MessageChannel } from './channel.js';
import type { CredentialPolicy, VhostUserListener } from './connection.js';
import { VhostUserError } from './errors.js';
import { VhostUserFrontend } from './frontend.js';
import { VirtioNetDevice } from './net-device.js';
import { NET_DRIVER_FEATURES, VirtioNetDriver } from './net-driver.js';

export interface EndpointOptions extends ChannelOptions {
  /** 'event' (default, no spinning) or 'poll' (lowest latency, one busy core). */
  mode?: 'event' | 'poll';
  /** Peer credential policy (default: same uid or root). */
  policy?: CredentialPolicy;
}

export interface ChannelServer extends Disposable {
  readonly backend: VhostUserBackend;
  readonly device: VirtioNetDevice;
  readonly listener: VhostUserListener;
  readonly channel: MessageChannel;
  /** Resolves once a front-end is connected and its receive queue runs (send() can place messages). */
  ready(timeoutMs?: number): Promise<void>;
  close(): void;
}

/** A vipc back-end listening on `path`, serving one front-end at a time, with a message channel. */
export function listenChannel(path: string, options: EndpointOptions = {}): ChannelServer {
  const device = new VirtioNetDevice();
  const backend = new VhostUserBackend({ device, mode: options.mode ?? 'event' });
  const listener = backend.listen(path, options.policy ? { policy: options.policy } : {});
  const channel = new MessageChannel(deviceEndpoint(device), options);
  const up = (): boolean => device.linkUp(0);
  const server: ChannelServer = {
    backend,
    device,
    listener,
    channel,
    ready(timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const deadline = Date.now() + timeoutMs;
        const tick = (): void => {
          if (up()) resolve();
          else if (Date.now() > deadline)
            reject(new VhostUserError(`no front-end ready within ${timeoutMs} ms`, 'TIMEOUT'));
          else setTimeout(tick, 5);
        };
        tick();
      });
    },
    close() {
      channel.close();
      backend.close();
      listener.close();
    },
    [Symbol.dispose]() {
      server.close();
    },
  };
  return server;
}

export interface ChannelClient extends Disposable {
  readonly frontend: VhostUserFrontend;
  readonly driver: VirtioNetDriver;
  readonly channel: MessageChannel;
  /** Orderly shutdown (stops the rings, then closes). */
  stop(): Promise<void>;
  close(): void;
}

/** A vipc front-end connected to the back-end at `path` (memfd memory), with a message channel. */
export async function connectChannel(
  path: string,
  options: EndpointOptions & { timeoutMs?: number; packed?: boolean; queueSize?: number } = {},
): Promise<ChannelClient> {
  const frontend = await VhostUserFrontend.connect(path, {
    queueCount: 2,
    queueSize: options.queueSize ?? 256,
    packed: options.packed ?? false,
    features: NET_DRIVER_FEATURES,
    timeoutMs: options.timeoutMs ?? 10_000,
    ...(options.policy ? { policy: options.policy } : {}),
  });
  const driver = new VirtioNetDriver(frontend, { mode: options.mode ?? 'event' });
  const channel = new MessageChannel(driverEndpoint(driver), options);
  const client: ChannelClient = {
    frontend,
    driver,
    channel,
    async stop() {
      channel.close();
      driver.close();
      await frontend.stop();
    },
    close() {
      channel.close();
      driver.close();
      frontend.close();
    },
    [Symbol.dispose]() {
      client.close();
    },
  };
  return client;
}
