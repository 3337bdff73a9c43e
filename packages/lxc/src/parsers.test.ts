import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diagnoseStart, logExcerpt, parseInfo } from './container.js';
import { CONTAINER_STATES } from './defs.js';
import { LxcError } from './errors.js';
import { parseKernelConfig } from './host-check.js';
import { parseLdd } from './rootfs.js';

// Tool output is input too: these parsers must give typed results or typed errors on anything.
const pieces = fc.constantFrom(
  'State:',
  'PID:',
  'Memory use:',
  'CPU use:',
  'IP:',
  ' RUNNING',
  ' STOPPED',
  ' FROZEN',
  ' 123',
  ' -1',
  ' 1e9',
  '\n',
  '=>',
  ' not found',
  ' (0x7f)',
  '/lib/x.so',
  'CONFIG_X=y',
  '# CONFIG_Y is not set',
  ' ERROR ',
  'Failed to exec "',
  'bridge "',
  '"',
  ' ',
);
const text = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.array(pieces, { maxLength: 80 }).map((a) => a.join('')),
);
const RUNS = 2000;

describe('tool output parsers under fuzz (bounded: 2000 inputs each)', () => {
  it('parseInfo: a known state and non-negative numbers, or COMMAND_FAILED', () => {
    fc.assert(
      fc.property(text, (t) => {
        try {
          const info = parseInfo('x', t);
          expect(CONTAINER_STATES).toContain(info.state);
          for (const n of [info.pid, info.memoryBytes, info.cpuNs]) {
            if (n !== undefined) expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
          }
        } catch (e) {
          expect(e).toBeInstanceOf(LxcError);
          expect((e as LxcError).code).toBe('COMMAND_FAILED');
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('parseLdd: absolute paths, or ROOTFS_FAILED for a missing library', () => {
    fc.assert(
      fc.property(text, (t) => {
        try {
          for (const p of parseLdd(t)) expect(p.startsWith('/')).toBe(true);
        } catch (e) {
          expect(e).toBeInstanceOf(LxcError);
          expect((e as LxcError).code).toBe('ROOTFS_FAILED');
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('parseKernelConfig, logExcerpt and diagnoseStart never throw', () => {
    fc.assert(
      fc.property(text, fc.integer({ min: 1, max: 50 }), (t, max) => {
        for (const [k] of parseKernelConfig(t)) expect(k).toMatch(/^CONFIG_/);
        expect(logExcerpt(t, max).split('\n').length).toBeLessThanOrEqual(max);
        const fix = diagnoseStart(t);
        if (fix !== undefined) expect(fix.length).toBeGreaterThan(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('parseInfo reads real lxc-info -H output', () => {
    const info = parseInfo(
      't1',
      'Name:           t1\nState:          RUNNING\nPID:            13431\nCPU use:        10165980\nBlkIO use:      0\nMemory use:     1187840\nKMem use:       733184\nIP:             10.0.3.5\n',
    );
    expect(info).toEqual({
      name: 't1',
      state: 'RUNNING',
      pid: 13431,
      cpuNs: 10165980,
      memoryBytes: 1187840,
      ips: ['10.0.3.5'],
    });
    expect(() => parseInfo('t1', 'State: EXPLODED\n')).toThrow(/unknown state/);
  });
});
