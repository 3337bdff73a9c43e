import { describe, expect, it } from 'vitest';
import { CliError } from './errors.js';
import { until } from './until.js';

describe('until', () => {
  it('resolves at once when the condition holds, without a pause or onWait', async () => {
    let calls = 0;
    let waits = 0;
    await until(
      () => {
        calls++;
        return true;
      },
      'nothing',
      { deadline: Date.now() - 1000, intervalMs: 60_000, onWait: () => waits++ },
    );
    expect(calls).toBe(1);
    expect(waits).toBe(0);
  });

  it('checks again after each pause, calling onWait before each one', async () => {
    let calls = 0;
    let waits = 0;
    await until(() => ++calls === 3, 'the third check', {
      deadline: Date.now() + 60_000,
      intervalMs: 1,
      onWait: () => waits++,
    });
    expect(calls).toBe(3);
    expect(waits).toBe(2);
  });

  it('past the deadline rejects with FAILED "timed out waiting for <what>"', async () => {
    const err = await until(() => false, 'socket /run/x.sock', {
      deadline: Date.now() - 1,
      intervalMs: 1,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect(err).toMatchObject({ code: 'FAILED', message: 'timed out waiting for socket /run/x.sock' });
  });

  it('past the deadline throws the error a function gives, built at that moment', async () => {
    let state = 'start';
    const err = await until(
      () => {
        state = 'checked';
        return false;
      },
      () => new CliError('FAILED', `gave up in state ${state}`, 'a hint'),
      { deadline: Date.now() - 1, intervalMs: 1 },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'FAILED', message: 'gave up in state checked', hint: 'a hint' });
  });

  it('an aborted signal rejects with FAILED "interrupted", before the deadline is looked at', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(
      until(() => false, 'x', { deadline: Date.now() - 1, intervalMs: 1, signal: ac.signal }),
    ).rejects.toMatchObject({ code: 'FAILED', message: 'interrupted' });
  });

  it('an abort while waiting ends the wait', async () => {
    const ac = new AbortController();
    let calls = 0;
    const p = until(
      () => {
        if (++calls === 2) ac.abort();
        return false;
      },
      'x',
      { deadline: Date.now() + 60_000, intervalMs: 1, signal: ac.signal },
    );
    await expect(p).rejects.toMatchObject({ message: 'interrupted' });
    expect(calls).toBe(2);
  });

  it('passes on what the condition throws', async () => {
    const boom = new CliError('FAILED', "testpmd 'a' exited");
    await expect(
      until(
        () => {
          throw boom;
        },
        'x',
        { deadline: Date.now() + 60_000, intervalMs: 1 },
      ),
    ).rejects.toBe(boom);
  });
});
