import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HdrHistogram } from './hdr-histogram.js';
import {
  checkReturnedProbe,
  MIN_PROBE_SIZE,
  type ProbeDevice,
  probeFrame,
  RoundTripProbe,
} from './testpmd-round-trips.js';

/** What testpmd's macswap forwarding does to a frame: destination and source exchanged. */
function macswap(frame: Uint8Array): Uint8Array {
  const f = Uint8Array.from(frame);
  f.set(frame.subarray(6, 12), 0);
  f.set(frame.subarray(0, 6), 6);
  return f;
}

/**
 * A probe whose device is a stand-in for testpmd in these unit tests (the
 * real one is in scenarios.test.ts): the device returns each frame it is
 * given on a later event-loop turn, after `transform` (null: never), and
 * refuses the first `refuse` sends (no receive buffer).
 */
function echoProbe(
  o: {
    size?: number;
    timeoutMs?: number;
    transform?: (f: Uint8Array, n: number) => Uint8Array | null;
    refuse?: number;
  } = {},
): { probe: RoundTripProbe; device: { frames: number } } {
  const transform = o.transform ?? macswap;
  let refused = 0;
  const device = {
    frames: 0,
    send(frame: Uint8Array): boolean {
      if (refused < (o.refuse ?? 0)) {
        refused++;
        return false;
      }
      const copy = Uint8Array.from(frame);
      const n = ++device.frames;
      setImmediate(() => {
        const back = transform(copy, n);
        if (back !== null) probe.onFrame(back);
      });
      return true;
    },
  } satisfies ProbeDevice & { frames: number };
  const probe = new RoundTripProbe(device, o.size ?? 64, o.timeoutMs ?? 10_000);
  return { probe, device };
}

describe('probe frames', () => {
  it('a macswapped probe passes its own check', () => {
    fc.assert(
      fc.property(fc.integer({ min: MIN_PROBE_SIZE, max: 1518 }), fc.nat(), (size, seq) => {
        const f = probeFrame(size, seq);
        expect(f.length).toBe(size);
        expect(checkReturnedProbe(macswap(f), size, seq)).toBeNull();
      }),
    );
  });

  it('any change to the header, the sequence number or the length is reported', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: MIN_PROBE_SIZE, max: 256 }),
        fc.nat(),
        fc.integer({ min: 0, max: MIN_PROBE_SIZE - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (size, seq, at, xor) => {
          const f = macswap(probeFrame(size, seq));
          f[at]! ^= xor;
          expect(checkReturnedProbe(f, size, seq)).toBeTypeOf('string');
        },
      ),
    );
    const f = macswap(probeFrame(64, 7));
    expect(checkReturnedProbe(f, 64, 7)).toBeNull();
    expect(checkReturnedProbe(f.subarray(0, 63), 64, 7)).toMatch(/63-byte frame came back for a 64-byte/);
    expect(checkReturnedProbe(probeFrame(64, 7), 64, 7)).toMatch(/without its MAC addresses swapped/);
    expect(checkReturnedProbe(f, 64, 8)).toMatch(/probe 7 came back while probe 8/);
  });

  it('refuses sizes that cannot hold the header and the sequence number', () => {
    expect(() => probeFrame(MIN_PROBE_SIZE - 1)).toThrow(expect.objectContaining({ code: 'OUT_OF_RANGE' }));
  });
});

describe('RoundTripProbe', () => {
  it('sends one probe at a time and records every measured round trip', async () => {
    const { probe, device } = echoProbe();
    const r = await probe.run({ latencyWarmupMs: 2, latencyMs: 10 });
    expect(r.sent).toBe(device.frames);
    expect(r.returned).toBe(r.sent);
    expect(r.measured).toBeGreaterThan(0);
    expect(r.measured).toBeLessThanOrEqual(r.sent);
    expect(r.histogram.totalCount).toBe(r.measured);
    expect(r.histogram.valueAtPercentile(50)).toBeGreaterThan(0);
    expect(r.sendRetries).toBe(0);
    // the snapshot travels like the endpoints' histograms
    expect(HdrHistogram.fromSnapshot(r.histogram.snapshot()).totalCount).toBe(r.measured);
  });

  it('records at least one round trip even with no time for it', async () => {
    const r = await echoProbe({ size: 1500 }).probe.run({ latencyWarmupMs: 0, latencyMs: 0 });
    expect(r.measured).toBe(1);
    expect(r.histogram.totalCount).toBe(1);
  });

  it('retries a send that found no receive buffer, and counts it', async () => {
    const r = await echoProbe({ refuse: 3 }).probe.run({ latencyWarmupMs: 0, latencyMs: 0 });
    expect(r.sendRetries).toBe(1);
    expect(r.returned).toBe(1);
  });

  it('fails with PROTOCOL when a frame other than the probe in flight comes back', async () => {
    const { probe } = echoProbe({
      transform: (f, n) => {
        const back = macswap(f);
        if (n === 3) new DataView(back.buffer).setUint32(14, 999);
        return back;
      },
    });
    await expect(probe.run({ latencyWarmupMs: 0, latencyMs: 60_000 })).rejects.toMatchObject({
      code: 'PROTOCOL',
      message: 'probe 999 came back while probe 3 was in flight',
    });
  });

  it('fails with PROTOCOL when an unswapped frame comes back (not a macswap peer)', async () => {
    const { probe } = echoProbe({ transform: (f) => f });
    await expect(probe.run({ latencyWarmupMs: 0, latencyMs: 0 })).rejects.toMatchObject({
      code: 'PROTOCOL',
    });
  });

  it('fails with ENDPOINT_TIMEOUT when a probe does not come back', async () => {
    const { probe } = echoProbe({ timeoutMs: 50, transform: (f, n) => (n === 2 ? null : macswap(f)) });
    await expect(probe.run({ latencyWarmupMs: 0, latencyMs: 60_000 })).rejects.toMatchObject({
      code: 'ENDPOINT_TIMEOUT',
      message: 'probe 2 did not come back from testpmd within 50 ms',
    });
  });

  it('a frame with no probe in flight fails the next probe', async () => {
    const { probe } = echoProbe();
    probe.onFrame(macswap(probeFrame(64, 1)));
    await expect(probe.run({ latencyWarmupMs: 0, latencyMs: 0 })).rejects.toMatchObject({
      code: 'PROTOCOL',
      message: 'a frame came back with no probe in flight',
    });
  });
});
