import { existsSync } from 'node:fs';
import { UsageError } from '../../../proto/errors.js';
import { collectArgs } from '../../run/run-id.js';
import type { CliContext } from '../context.js';
import { checkRunId, queueConnection } from '../queue-flags.js';
import type { CommandOptions } from './common.js';

export async function run(ctx: CliContext, [run]: string[], o: CommandOptions): Promise<void> {
  const runId = checkRunId(run);
  // Loaded once the run id is checked: a bad one is one line without loading the NATS client.
  const { JetStreamBackend } = await import('../../../worker/backends/jetstream.js');
  const manifest = await JetStreamBackend.manifest({ ...(await queueConnection(o)), runId });
  if (manifest.argv.length === 0) throw new UsageError(`run ${runId} recorded no command line to collect with`);
  // Relative paths and --out in the command line are the run's own: go where it ran, when that exists here.
  if (existsSync(manifest.cwd)) process.chdir(manifest.cwd);
  else ctx.err(`neuromfa: ${manifest.cwd}, where run ${runId} started, is not on this machine: its relative paths are taken from ${process.cwd()}\n`);
  ctx.err(`neuromfa: collecting run ${runId}: ${manifest.argv.join(' ')}\n`);
  await ctx.rerun!(collectArgs(manifest.argv, runId, o.nats as string));
}
