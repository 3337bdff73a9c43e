import type { CommandContext } from '../command.js';
import { CliError } from '../errors.js';

/** The part of the bench app this command uses: its own CLI entry (options, help, report). */
interface BenchApi {
  main(argv: string[], io?: { signal?: AbortSignal }): Promise<number>;
}

export async function run(ctx: CommandContext): Promise<number> {
  const name = '@vipc/bench';
  let bench: BenchApi;
  try {
    bench = (await import(name)) as BenchApi;
  } catch (err) {
    throw new CliError(
      'PEER_MISSING',
      `the bench app is not available: ${(err as Error).message.split('\n')[0]}`,
      'pnpm --filter @vipc/bench build',
    );
  }
  return bench.main(ctx.positionals, { signal: ctx.signal });
}
