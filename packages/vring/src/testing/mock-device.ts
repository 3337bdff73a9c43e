import type { DescriptorChain } from '../descriptor-chain.js';
import type { GuestMemory } from '../guest-memory.js';
import { PackedDeviceQueue } from '../packed-device-queue.js';
import type { PackedQueueAddresses, QueueAddresses, QueueFeatures } from '../queue-state.js';
import { SplitDeviceQueue } from '../split-device-queue.js';
import type { QueueKind } from './queue-memory.js';

/**
 * What a handler returns for a chain: bytes to copy into its writable buffers,
 * the number of bytes it wrote itself, or nothing (0 bytes written).
 */
export type MockHandlerResult = Uint8Array | number | undefined;

export interface MockDeviceOptions {
  memory: GuestMemory;
  size: number;
  addresses: QueueAddresses | PackedQueueAddresses;
  kind?: QueueKind;
  features?: QueueFeatures;
}

/**
 * A virtio device for tests: serves the ring a driver under test set up,
 * one handler call per chain. Attach it to a MockDriver with `MockDevice.for(driver)`.
 */
export class MockDevice {
  readonly queue: SplitDeviceQueue | PackedDeviceQueue;
  /** publishUsed() calls that asked for a notification. */
  notifications = 0;
  /** Chains processed so far. */
  processed = 0;

  constructor(opts: MockDeviceOptions) {
    const q = { memory: opts.memory, size: opts.size, features: opts.features };
    this.queue =
      (opts.kind ?? ('descRing' in opts.addresses ? 'packed' : 'split')) === 'split'
        ? new SplitDeviceQueue({ ...q, addresses: opts.addresses as QueueAddresses })
        : new PackedDeviceQueue({ ...q, addresses: opts.addresses });
  }

  /** A device over a MockDriver's ring. */
  static for(driver: {
    memory: GuestMemory;
    size: number;
    addresses: QueueAddresses | PackedQueueAddresses;
    mem: { kind: QueueKind; features: QueueFeatures };
  }): MockDevice {
    return new MockDevice({
      memory: driver.memory,
      size: driver.size,
      addresses: driver.addresses,
      kind: driver.mem.kind,
      features: driver.mem.features,
    });
  }

  /**
   * Takes every available chain, calls `handler`, returns each chain as used,
   * and publishes once. Returns the number of chains processed.
   */
  process(handler: (chain: DescriptorChain, request: Uint8Array) => MockHandlerResult): number {
    let n = 0;
    for (let c = this.queue.pop(); c !== null; c = this.queue.pop()) {
      const r = handler(c, c.read());
      const written = r instanceof Uint8Array ? c.write(r) : typeof r === 'number' ? r : 0;
      this.queue.addUsed(c.head, written);
      n++;
    }
    if (this.queue.publishUsed()) this.notifications++;
    this.processed += n;
    return n;
  }

  /** Answers every chain with its own readable bytes (as much as fits). */
  echo(): number {
    return this.process((_, request) => request);
  }
}
