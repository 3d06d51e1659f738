import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../../../proto/errors.js';
import { collectArgs } from '../../run/run-id.js';
import type { CliContext } from '../context.js';
import { addQueueFlags, checkRunId, queueConnection } from '../queue-flags.js';
import type { CommandSpec } from './common.js';

export const collectCommand = {
  name: 'collect',
  summary: "finish a JetStream run from any machine: runs the run's command again, taking every result its shards stored (nothing stored is recomputed)",
  configure(cmd: Command) {
    addQueueFlags(cmd);
  },
  async run(ctx: CliContext, [run]: string[], o: Record<string, string | boolean | undefined>) {
    const runId = checkRunId(run);
    const { JetStreamBackend } = await import('../../../worker/backends/jetstream.js');
    const { manifest } = await JetStreamBackend.status({ ...(await queueConnection(o)), runId });
    if (manifest.argv.length === 0) throw new UsageError(`run ${runId} recorded no command line to collect with`);
    // Relative paths and --out in the command line are the run's own: go where it ran, when that exists here.
    if (existsSync(manifest.cwd)) process.chdir(manifest.cwd);
    else ctx.err(`neuromfa: ${manifest.cwd}, where run ${runId} started, is not on this machine: its relative paths are taken from ${process.cwd()}\n`);
    ctx.err(`neuromfa: collecting run ${runId}: ${manifest.argv.join(' ')}\n`);
    await ctx.rerun!(collectArgs(manifest.argv, runId, o.nats as string));
  },
} satisfies CommandSpec;
