import type { Command } from 'commander';
import type { CliContext } from '../context.js';

export type CommandOptions = Record<string, string | boolean | undefined>;

/** What a command does once its flags are parsed: positional arguments, then the flags. */
export type RunCommand = (ctx: CliContext, args: string[], options: CommandOptions) => Promise<void>;

/**
 * A CLI command: declared once, registered by main.ts from the command table. The spec
 * (`commands/<name>.ts`) imports only commander's flag helpers; its `run` body and the
 * analysis behind it live in `commands/<name>-run.ts`, loaded when the command runs, so
 * `--version` or `mfa` does not pay for every other command's modules.
 */
export interface CommandSpec {
  name: string;
  summary: string;
  configure(cmd: Command): void;
  run: RunCommand;
}

/** A `run` that imports its module on first call. */
export function runFrom(load: () => Promise<{ run: RunCommand }>): RunCommand {
  return async (ctx, args, options) => (await load()).run(ctx, args, options);
}

export function addAnalysisFlags(cmd: Command): void {
  cmd.option('--threshold <T>', 'keep distances d = 1/|w| with 1 < d <= T', '150');
  cmd.option('--decimals <p>', 'round radii to p decimals (0-6), half to even', '0');
  cmd.option('--min-neighbors <m>', 'select nodes with more than m kept distances', '10');
  cmd.option('--q <grid>', 'q values: start:stop:step (inclusive) or a comma list', '-3:3:0.1');
}

export function addRunFlags(cmd: Command): void {
  cmd.option('--threads <n>', 'worker threads (default: all cores)');
  cmd.option('--shards <n>', 'shards per edge list (default: 2 per thread); results do not depend on it beyond 1e-12');
  cmd.option('--json', 'print only JSON on stdout');
}
