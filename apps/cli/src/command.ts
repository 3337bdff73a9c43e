import type { ParseArgsConfig } from 'node:util';
import type { Output } from './output.js';

export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

export interface CommandContext {
  /** Parsed options (strings and booleans as declared). */
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  out: Output;
  /** Aborted on SIGINT/SIGTERM: long commands stop cleanly. */
  signal: AbortSignal;
}

export interface CommandModule {
  run(ctx: CommandContext): Promise<number | undefined>;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  /** Option descriptions for --help, by option name. */
  help: Record<string, string>;
  options: OptionSpecs;
  /** Extra positional arguments allowed (default: none). */
  positionals?: { min: number; max: number };
  examples: string[];
  /** Hand the raw arguments (positionals) to the module unparsed, --help included (commands of other apps). */
  passthrough?: boolean;
  load(): Promise<CommandModule>;
}
