import type { Command } from 'commander';
import { json, type CliContext } from '../context.js';
import { addQueueFlags, checkRunId, queueConnection } from '../queue-flags.js';
import type { CommandSpec } from './common.js';

export const statusCommand = {
  name: 'status',
  summary: "a JetStream run's progress, read from the server without joining or changing the run",
  configure(cmd: Command) {
    addQueueFlags(cmd);
    cmd.option('--json', 'print only JSON on stdout');
  },
  async run(ctx: CliContext, [run]: string[], o: Record<string, string | boolean | undefined>) {
    const runId = checkRunId(run);
    const { JetStreamBackend } = await import('../../../worker/backends/jetstream.js');
    const s = await JetStreamBackend.status({ ...(await queueConnection(o)), runId });
    if (o.json) {
      const { manifest, ...counts } = s;
      ctx.out(json({ run: runId, command: manifest.argv, cwd: manifest.cwd, created: manifest.created, ...counts }));
      return;
    }
    ctx.out(
      `run ${runId}: neuromfa ${s.manifest.argv.join(' ')}\n` +
        `started ${s.manifest.created} in ${s.manifest.cwd}\n` +
        `${s.done} of ${s.total} shards done, ${s.failed} failed; ${s.pending} shards in the queue (every run)${s.redelivered ? `, ${s.redelivered} redelivered` : ''}\n`,
    );
  },
} satisfies CommandSpec;
