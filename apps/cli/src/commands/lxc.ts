// `vipc lxc create|start|stop|destroy|list|exec|info`: container lifecycle through @vipc/lxc.
import { baseConfig, bindMount, type Container, Lxc, LxcError, socketDirMount } from '@vipc/lxc';
import type { CommandContext } from '../command.js';
import { defaultLxcPath } from '../container.js';
import { CliError, usageError } from '../errors.js';

function lxcOf(ctx: CommandContext): Lxc {
  if (!Lxc.available()) throw new CliError('PEER_MISSING', 'LXC is not installed', 'apt-get install lxc');
  return new Lxc({ lxcpath: typeof ctx.values.lxcpath === 'string' ? ctx.values.lxcpath : defaultLxcPath() });
}

function existing(lxc: Lxc, name: string): Container {
  const c = lxc.container(name);
  if (!c.exists())
    throw new CliError('NOT_FOUND', `no container '${name}' in ${lxc.lxcpath}`, 'vipc lxc list');
  return c;
}

/** --mount SRC:DST[:ro] */
function parseMount(text: string) {
  const [source, target, mode, ...rest] = text.split(':');
  if (!source || !target || rest.length > 0 || (mode !== undefined && mode !== 'ro' && mode !== 'rw'))
    throw usageError(`--mount '${text}': expected HOST_PATH:CONTAINER_PATH[:ro]`);
  return bindMount(source, target, { readOnly: mode === 'ro' });
}

async function wrap<T>(what: () => Promise<T>): Promise<T> {
  try {
    return await what();
  } catch (err) {
    if (err instanceof LxcError)
      throw new CliError(err.code === 'NOT_FOUND' ? 'NOT_FOUND' : 'FAILED', err.message, err.fix);
    throw err;
  }
}

export function runWith(action: 'create' | 'start' | 'stop' | 'destroy' | 'list' | 'exec' | 'info') {
  return async (ctx: CommandContext): Promise<number> => {
    const lxc = lxcOf(ctx);
    const [name, ...rest] = ctx.positionals;
    const v = ctx.values;
    const done = (doc: Record<string, unknown>, line: string) => {
      if (ctx.out.json) ctx.out.document({ ok: true, ...doc });
      else ctx.out.print(line);
      return 0;
    };
    switch (action) {
      case 'list': {
        const infos = await wrap(() => lxc.listInfo());
        if (ctx.out.json) ctx.out.document({ ok: true, lxcpath: lxc.lxcpath, containers: infos });
        else if (infos.length === 0) ctx.out.print(`no containers in ${lxc.lxcpath}`);
        else
          for (const i of infos)
            ctx.out.print(
              `${i.name.padEnd(24)} ${i.state.toLowerCase()}${i.pid ? ` (init pid ${i.pid})` : ''}`,
            );
        return 0;
      }
      case 'create': {
        const config = baseConfig();
        const mounts = [];
        if (typeof v['socket-dir'] === 'string')
          mounts.push(socketDirMount(v['socket-dir'], v['socket-dir']));
        for (const m of (v.mount as string[] | undefined) ?? []) mounts.push(parseMount(m));
        config.mounts = mounts;
        if (v.memory !== undefined) {
          if (!/^\d+$/.test(String(v.memory))) throw usageError('--memory must be a number of MiB');
          config.cgroup = [{ key: 'memory.limit_in_bytes', value: `${v.memory}M` }];
        }
        const c = await wrap(() =>
          lxc.create(name!, { config, rootfs: v['no-node'] === true ? { node: false } : true }),
        );
        if (v.start === true) await wrap(() => c.start());
        return done(
          { name, lxcpath: lxc.lxcpath, started: v.start === true },
          `created container '${name}' in ${lxc.lxcpath}${v.start === true ? ' and started it' : ''}`,
        );
      }
      case 'start': {
        const c = existing(lxc, name!);
        await wrap(() => c.start());
        return done({ name, state: 'RUNNING' }, `container '${name}' is running`);
      }
      case 'stop': {
        const c = existing(lxc, name!);
        const r = await wrap(() => c.stop({ kill: v.kill === true }));
        return done(
          { name, ...r },
          `container '${name}' stopped${r.wasRunning ? (r.graceful ? '' : ' (killed)') : ' (it was not running)'}`,
        );
      }
      case 'destroy': {
        const c = existing(lxc, name!);
        await wrap(() => c.destroy({ force: true }));
        return done({ name }, `container '${name}' destroyed`);
      }
      case 'info': {
        const c = existing(lxc, name!);
        const i = await wrap(() => c.info());
        return done(
          { ...i },
          `${i.name}: ${i.state.toLowerCase()}${i.pid ? `, init pid ${i.pid}` : ''}${i.memoryBytes ? `, memory ${Math.round(i.memoryBytes / 1048576)} MiB` : ''}`,
        );
      }
      case 'exec': {
        if (rest.length === 0)
          throw usageError('give the command after --: vipc lxc exec NAME -- CMD [ARGS...]');
        const c = existing(lxc, name!);
        const r = await wrap(() => c.attach(rest, { timeoutMs: 3_600_000 }));
        if (ctx.out.json)
          ctx.out.document({
            ok: r.exitCode === 0,
            exitCode: r.exitCode,
            stdout: r.stdout,
            stderr: r.stderr,
          });
        else {
          process.stdout.write(r.stdout);
          process.stderr.write(r.stderr);
        }
        return r.exitCode === 0 ? 0 : 1;
      }
    }
  };
}
