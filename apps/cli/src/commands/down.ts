import { rmSync } from 'node:fs';
import type { CommandContext } from '../command.js';
import { CliError } from '../errors.js';
import { isSameProcess, type State, StateStore } from '../state.js';
import { stopProcess, teardown } from '../teardown.js';

export function pickState(store: StateStore, name: string | undefined, command: string): State[] {
  if (name !== undefined) {
    const s = store.read(name);
    if (!s) throw new CliError('NOT_FOUND', `no topology '${name}' is up (no state in ${store.dir})`);
    return [s];
  }
  const all = store.list();
  if (all.length === 0) throw new CliError('NOT_FOUND', `no topology is up (no state in ${store.dir})`);
  if (all.length > 1 && command === 'down')
    throw new CliError(
      'USAGE',
      `several topologies are up: ${all.map((s) => s.name).join(', ')}`,
      'name one: vipc down NAME, or use --all',
    );
  return all;
}

export async function run(ctx: CommandContext): Promise<number> {
  const store = new StateStore(
    typeof ctx.values['state-dir'] === 'string' ? ctx.values['state-dir'] : undefined,
  );
  const states = ctx.values.all === true ? store.list() : pickState(store, ctx.positionals[0], 'down');
  const report = [];
  let failed = 0;
  for (const state of states) {
    // A `vipc up` still running would keep creating things: stop it first.
    if (state.owner.pid !== process.pid && isSameProcess(state.owner.pid, state.owner.startTime)) {
      ctx.out.log(`vipc down: stopping the running 'vipc up' (pid ${state.owner.pid})`);
      await stopProcess(state.owner.pid, state.owner.startTime, 'SIGKILL', 2000);
    }
    const steps = await teardown(state, (s) =>
      ctx.out.log(
        `  ${s.result === 'failed' ? 'FAILED ' : ''}${s.resource}: ${s.result}${s.detail ? ` (${s.detail})` : ''}`,
      ),
    );
    const bad = steps.filter((s) => s.result === 'failed');
    if (bad.length === 0) {
      rmSync(state.runDir, { recursive: true, force: true });
      store.remove(state.name);
    } else failed += bad.length;
    report.push({ name: state.name, removed: bad.length === 0, steps });
    ctx.out.print(
      bad.length === 0
        ? `vipc down: topology '${state.name}' is down (${steps.filter((s) => s.result === 'removed').length} removed, ${steps.filter((s) => s.result === 'absent').length} already gone)`
        : `vipc down: ${bad.length} resource(s) of '${state.name}' could not be removed; the state file is kept: run vipc down again`,
    );
  }
  if (ctx.out.json) ctx.out.document({ ok: failed === 0, topologies: report });
  return failed === 0 ? 0 : 1;
}
