import { describe, expect, it } from 'vitest';
import { BenchError } from './errors.js';
import { sleep, until } from './until.js';

describe('until', () => {
  it('resolves at once when the condition already holds, without waiting', async () => {
    let calls = 0;
    await until(
      () => {
        calls++;
        return true;
      },
      'nothing',
      0,
    );
    expect(calls).toBe(1);
  });

  it('checks again after each pause until the condition holds', async () => {
    let calls = 0;
    await until(() => ++calls === 4, 'the fourth check', 60_000, 1);
    expect(calls).toBe(4);
  });

  it('rejects with ENDPOINT_TIMEOUT naming what it waited for', async () => {
    let calls = 0;
    const err = await until(
      () => {
        calls++;
        return false;
      },
      'a frame that never comes',
      0,
      1,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BenchError);
    expect(err).toMatchObject({
      code: 'ENDPOINT_TIMEOUT',
      message: 'timed out waiting for a frame that never comes',
    });
    // a deadline of 0 ms still checks the condition before giving up
    expect(calls).toBeGreaterThanOrEqual(1);
  });

  it('passes on what the condition throws', async () => {
    const boom = new BenchError('PROTOCOL', 'bad frame');
    await expect(
      until(
        () => {
          throw boom;
        },
        'x',
        60_000,
      ),
    ).rejects.toBe(boom);
  });

  it('sleep resolves', async () => {
    await expect(sleep(1)).resolves.toBeUndefined();
  });
});
