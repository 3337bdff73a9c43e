import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliError } from './errors.js';
import { findTagged, isSameProcess, Journal, processStartTime, type State, StateStore } from './state.js';
import { teardown } from './teardown.js';

const dir = mkdtempSync(join(tmpdir(), `vipc-state-${process.pid}-`));
const spawned: number[] = [];
afterAll(() => {
  for (const pid of spawned) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function newState(name: string): State {
  return {
    version: 1,
    name,
    file: 't.yaml',
    owner: { pid: process.pid, startTime: processStartTime(process.pid) },
    phase: 'starting',
    startedAt: new Date().toISOString(),
    runDir: join(dir, name),
    resources: [],
  };
}

function sleeper(tag: string) {
  const child = spawn('sleep', ['600'], { env: { ...process.env, VIPC_INSTANCE: tag }, stdio: 'ignore' });
  spawned.push(child.pid!);
  return child;
}

describe('state journal and teardown', () => {
  it('records a resource as pending before it exists, ready after', async () => {
    const store = new StateStore(join(dir, 's1'));
    const j = new Journal(store, newState('one'));
    let seen: string | undefined;
    await j.step({ kind: 'dir', path: join(dir, 'made'), status: 'pending' }, (r) => {
      seen = store.read('one')!.resources[0]!.status;
      mkdirSync(r.path);
    });
    expect(seen).toBe('pending');
    expect(store.read('one')!.resources[0]!.status).toBe('ready');
    expect(store.list().map((s) => s.name)).toEqual(['one']);
  });

  it('tears down newest first, kills tagged processes, and treats gone things as absent', async () => {
    const tag = `vipc-test-${process.pid}-a`;
    const child = sleeper(tag);
    const made = join(dir, 'made2');
    mkdirSync(made);
    writeFileSync(join(made, 'x.sock'), '');
    const s = newState('two');
    s.resources.push(
      { kind: 'dir', path: made, status: 'ready' },
      { kind: 'socket', path: join(made, 'x.sock'), status: 'ready' },
      // Spawned, but the crash came before its pid reached the file: found by its tag.
      { kind: 'process', name: 'ep', role: 'endpoint', tag, status: 'pending' },
      { kind: 'socket', path: join(dir, 'never-made.sock'), status: 'pending' },
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(findTagged(tag)).toEqual([child.pid]);
    const steps = await teardown(s);
    expect(steps.map((x) => x.result)).toEqual(['absent', 'removed', 'removed', 'removed']);
    expect(steps[1]!.resource).toMatch(/^process ep/);
    expect(findTagged(tag)).toEqual([]);
    expect(existsSync(made)).toBe(false);
    // Idempotent: a second run finds everything gone.
    expect((await teardown(s)).every((x) => x.result === 'absent')).toBe(true);
  });

  it('never signals a recycled pid: start time must match', async () => {
    const child = sleeper(`vipc-test-${process.pid}-b`);
    await new Promise((r) => setTimeout(r, 50));
    const pid = child.pid!;
    expect(isSameProcess(pid, processStartTime(pid))).toBe(true);
    const s = newState('three');
    s.resources.push({
      kind: 'process',
      name: 'x',
      role: 'endpoint',
      pid,
      startTime: '1',
      tag: 'no-such-tag',
      status: 'ready',
    });
    expect((await teardown(s))[0]!.result).toBe('absent');
    expect(isSameProcess(pid, processStartTime(pid))).toBe(true);
    child.kill('SIGKILL');
  });

  it('an unreadable state file is a clear STATE error', () => {
    const store = new StateStore(join(dir, 's4'));
    mkdirSync(store.dir, { recursive: true });
    writeFileSync(store.path('bad'), '{ not json');
    expect(() => store.read('bad')).toThrow(CliError);
    expect(() => store.read('bad')).toThrow(/unreadable/);
    expect(readFileSync(store.path('bad'), 'utf8')).toBe('{ not json');
  });
});
