import { Command, CommanderError } from 'commander';
import { exitCodeFor, NeuromfaError } from '../../proto/errors.js';
import { defaultContext, type CliContext } from './context.js';
import { analyzeCommand } from './commands/analyze.js';
import type { CommandSpec } from './commands/common.js';
import { demoCommand } from './commands/demo.js';
import { emergenceCommand } from './commands/emergence.js';
import { mfaCommand } from './commands/mfa.js';
import { nfdCommand } from './commands/nfd.js';
import { ninCommand } from './commands/nin.js';
import { compareCommand } from './commands/compare.js';
import { workerCommand } from './commands/worker.js';
import { collectCommand } from './commands/collect.js';
import { statusCommand } from './commands/status.js';
import { HELP_FOOTER } from './help-text.js';
import { VERSION } from '../../worker/version.js';


/** Each spec is light: a command's modules load only when it runs (commands/common.ts). */
const COMMANDS: CommandSpec[] = [mfaCommand, nfdCommand, ninCommand, analyzeCommand, emergenceCommand, compareCommand, demoCommand, workerCommand, collectCommand, statusCommand];

/**
 * The CLI boundary: flags are parsed and validated here, and every error becomes one line
 * on stderr and an exit code (0 ok, 1 unexpected, 2 usage, 3 bad input, 4 integrity,
 * 5 cluster). Stack traces only with --debug.
 */
export async function main(argv: string[], ctx: CliContext = defaultContext): Promise<number> {
  const debug = argv.includes('--debug');
  const program = new Command('neuromfa')
    .description('Neuron-based Multifractal Analysis (NeuroMFA) of neural network checkpoints')
    .option('--debug', 'print stack traces on errors')
    .version(VERSION, '--version', 'print the version and exit')
    .addHelpText('after', HELP_FOOTER)
    .exitOverride()
    .configureOutput({
      writeOut: ctx.out,
      writeErr: ctx.err,
      // Parse errors too are one line: "neuromfa: unknown option '--x' (Did you mean …?) …".
      outputError: (str, write) => write(`neuromfa: ${str.replace(/^error: /, '').trim().split(/\s*\n\s*/).join(' ')} (run with --help for usage)\n`),
    });
  let failure: unknown;
  let nested: number | undefined;
  const run: CliContext = { ...ctx, argv, rerun: async (next) => void (nested = await main(next, ctx)) };
  for (const spec of COMMANDS) {
    const cmd = program.command(spec.name).description(spec.summary).exitOverride();
    spec.configure(cmd);
    cmd.action(async (...a: unknown[]) => {
      const command = a[a.length - 1] as Command;
      try {
        // Positional arguments, with a variadic one (emergence's models) spread flat.
        await spec.run(run, (a.slice(0, -2) as Array<string | string[]>).flat(), command.opts());
      } catch (err) {
        failure = err;
      }
    });
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    failure = err;
  }
  // `collect` ran the run's own command line, which reported its own outcome.
  if (failure === undefined) return nested ?? 0;
  const message = failure instanceof Error ? failure.message : String(failure);
  ctx.err(`neuromfa: ${message}\n`);
  if (debug && failure instanceof Error && failure.stack) ctx.err(`${failure.stack}\n`);
  else if (!(failure instanceof NeuromfaError)) ctx.err('(unexpected error: run with --debug for the stack trace)\n');
  return exitCodeFor(failure);
}
