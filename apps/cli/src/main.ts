import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { CommandSpec } from './command.js';
import { COMMANDS, resolveCommand } from './commands.js';
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './errors.js';
import { Output } from './output.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export function generalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'vipc: VirtIO IPC for containers (vhost-user rings in shared memory)',
    '',
    'Usage: vipc <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Every command takes --help (with examples) and --json (one JSON document on stdout).',
    'Progress and logs go to stderr. Exit codes: 0 ok, 1 failure, 2 usage error.',
    '',
    'Examples:',
    '  vipc doctor                                   # what works here, and how to fix the rest',
    '  vipc demo                                     # host back-end <-> front-end in an LXC container',
    '  vipc up topology.yaml && vipc status          # bring a topology up, look at it',
    '  vipc down                                     # tear it down (also after a crash)',
    '  vipc recv --socket /tmp/l.sock --listen &  echo hi | vipc send --socket /tmp/l.sock',
    '  vipc yocto emit --release scarthgap --out meta-vipc',
  ].join('\n');
}

/** Every command takes --json, declared or not. */
function optionsOf(spec: CommandSpec): CommandSpec['options'] {
  return { json: { type: 'boolean' }, ...spec.options };
}

/** What an option's value is called in the usage line (`--socket PATH`, `--ring split|packed`), else VALUE. */
function metavar(usage: string, name: string): string {
  let v = new RegExp(`--${name}[ =](\\S+)`).exec(usage)?.[1];
  if (v !== undefined) {
    // `[--mount SRC:DST[:ro]]...` -> SRC:DST[:ro]: drop the brackets that close the usage's own groups
    v = v.replace(/\.\.\.$/, '');
    const count = (c: string) => v!.split(c).length - 1;
    while (v.endsWith(']') && count(']') > count('[')) v = v.slice(0, -1);
    while (v.endsWith(')') && count(')') > count('(')) v = v.slice(0, -1);
    if (/^[A-Z]/.test(v) || v.includes('|')) return v;
  }
  return COMMON_METAVARS[name] ?? 'VALUE';
}

/** Options that many commands share, and that their usage lines leave out. */
const COMMON_METAVARS: Record<string, string> = {
  mode: 'poll|event',
  ring: 'split|packed',
  queues: 'N',
  'queue-size': 'N',
  timeout: 'SECONDS',
  'state-dir': 'DIR',
};

export function commandHelp(spec: CommandSpec): string {
  const lines = [`vipc ${spec.name}: ${spec.summary}`, '', `Usage: ${spec.usage}`, '', 'Options:'];
  const options = optionsOf(spec);
  const names = Object.keys(options);
  const label = (n: string) => {
    const o = options[n]!;
    const short = o.short ? `-${o.short}, ` : '';
    return `${short}--${n}${o.type === 'string' ? ` ${metavar(spec.usage, n)}` : ''}`;
  };
  const width = Math.max(10, ...names.map((n) => label(n).length));
  for (const n of names)
    lines.push(
      `  ${label(n).padEnd(width)}  ${spec.help[n] ?? (n === 'json' ? 'print one JSON document on stdout' : '')}`,
    );
  lines.push(`  ${'-h, --help'.padEnd(width)}  show this help`);
  lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}

/** Runs the CLI and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  // Global options may come before the command: `vipc --json status` = `vipc status --json`.
  const globals: string[] = [];
  let i = 0;
  while (argv[i] === '--json') globals.push(argv[i++]!);
  const [first, ...tail] = argv.slice(i);
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    const found = first === 'help' && tail.length > 0 ? resolveCommand(tail) : undefined;
    if (first === 'help' && tail.length > 0 && !found) {
      process.stderr.write(`vipc: unknown command '${tail.join(' ')}'\n\n${generalHelp()}\n`);
      return EXIT_USAGE;
    }
    process.stdout.write(`${found ? commandHelp(found.spec) : generalHelp()}\n`);
    return first === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (first === '--version' || first === '-V') {
    process.stdout.write(`${version()}\n`);
    return EXIT_OK;
  }
  const found = resolveCommand([first, ...tail]);
  if (!found) {
    const group = COMMANDS.filter((c) => c.name.startsWith(`${first} `));
    if (group.length > 0) {
      const sub =
        tail[0] && !tail[0].startsWith('-')
          ? `unknown subcommand '${first} ${tail[0]}'`
          : `'${first}' needs a subcommand`;
      process.stderr.write(
        `vipc: ${sub}; one of:\n${group.map((c) => `  vipc ${c.name}  ${c.summary}`).join('\n')}\n`,
      );
    } else process.stderr.write(`vipc: unknown command '${first}' (see 'vipc --help')\n`);
    return EXIT_USAGE;
  }
  const spec = found.spec;
  const rest = [...globals, ...found.args];
  if (spec.passthrough) return runModule(spec, { json: rest.includes('--json') }, rest);
  const dashes = rest.indexOf('--');
  const own = dashes >= 0 ? rest.slice(0, dashes) : rest;
  if (own.includes('--help') || own.includes('-h')) {
    process.stdout.write(`${commandHelp(spec)}\n`);
    return EXIT_OK;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options: optionsOf(spec), allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`vipc ${spec.name}: ${parseArgsMessage(err as Error)}\nUsage: ${spec.usage}\n`);
    return EXIT_USAGE;
  }
  const allowed = spec.positionals ?? { min: 0, max: 0 };
  if (parsed.positionals.length < allowed.min || parsed.positionals.length > allowed.max) {
    const what =
      parsed.positionals.length < allowed.min
        ? 'missing argument'
        : `unexpected argument '${parsed.positionals[allowed.max]}'`;
    process.stderr.write(`vipc ${spec.name}: ${what}\nUsage: ${spec.usage}\n`);
    return EXIT_USAGE;
  }
  return runModule(spec, parsed.values as Record<string, string | boolean | undefined>, parsed.positionals);
}

/** node:util parseArgs' messages, shorter (its advice about '--' only fits some cases). */
function parseArgsMessage(err: Error & { code?: string }): string {
  const m = /^Unknown option '([^']+)'/.exec(err.message);
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && m) return `unknown option '${m[1]}'`;
  return err.message;
}

async function runModule(
  spec: CommandSpec,
  values: Record<string, string | boolean | string[] | undefined>,
  positionals: string[],
): Promise<number> {
  const out = new Output({ json: values.json === true });
  const controller = new AbortController();
  const onSignal = () => controller.abort(new CliError('FAILED', 'interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('SIGHUP', onSignal);
  try {
    const mod = await spec.load();
    const code = await mod.run({
      values,
      positionals,
      out,
      signal: controller.signal,
    });
    return code ?? EXIT_OK;
  } catch (err) {
    out.clearProgress();
    if (err instanceof CliError) {
      process.stderr.write(`vipc ${spec.name}: ${err.message}\n`);
      if (err.hint) process.stderr.write(`  hint: ${err.hint}\n`);
      else if (err.code === 'USAGE') process.stderr.write(`Usage: ${spec.usage}\n`);
      if (out.json)
        out.document({
          ok: false,
          error: {
            code: err.code,
            message: err.message,
            hint: err.hint,
            // a topology's problems one by one (file, line, column, field, message), for tools
            // (TopologyError; not imported here, which would load the YAML parser for every command)
            ...('issues' in err && Array.isArray(err.issues) ? { issues: err.issues } : {}),
          },
        });
      return err.exitCode;
    }
    const e = err as Error & { code?: string };
    process.stderr.write(`vipc ${spec.name}: ${e.message}${e.code ? ` (${e.code})` : ''}\n`);
    if (process.env.VIPC_DEBUG) process.stderr.write(`${e.stack}\n`);
    if (out.json) out.document({ ok: false, error: { code: e.code ?? 'FAILED', message: e.message } });
    return EXIT_FAILURE;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
}
