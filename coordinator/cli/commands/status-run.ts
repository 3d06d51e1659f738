import { json, type CliContext } from '../context.js';
import { checkRunId, queueConnection } from '../queue-flags.js';
import type { CommandOptions } from './common.js';

export async function run(ctx: CliContext, [run]: string[], o: CommandOptions): Promise<void> {
  const runId = checkRunId(run);
  // Loaded once the run id is checked: a bad one is one line without loading the NATS client.
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
      `${s.done} of ${s.total} shards done, ${s.failed} failed; ${s.pending} shards in the queue (every run)${s.redelivered ? `, ${s.redelivered} redelivered and still out` : ''}\n`,
  );
}
