import type { Command } from 'commander';
import { UsageError } from '../../proto/errors.js';
import { DEFAULT_SUBJECT } from '../../proto/nats-chunks.js';
import type { NatsConnectOptions } from '../../worker/transport/nats-connect.js';
import { readPem, serverList } from './flags.js';

/** The flags that reach a JetStream deployment, for commands that only read or finish a run. */
export function addQueueFlags(cmd: Command): void {
  cmd.argument('<run>', 'the run id the coordinator printed (neuromfa: run ID on JetStream …)');
  cmd.requiredOption('--nats <url>', 'NATS server of the deployment (nats://host:4222)');
  cmd.option('--subject <s>', 'NATS subject the workers listen on', DEFAULT_SUBJECT);
  cmd.option('--nats-user <user>', 'NATS user (password from NEUROMFA_NATS_PASS)');
  cmd.option('--nats-token <token>', 'NATS token (or NEUROMFA_NATS_TOKEN)');
  cmd.option('--nats-tls-ca <file>', 'NATS: CA certificate of the server (enables TLS)');
}

/** How to reach the NATS server the flags name (coordinators of either kind, collect, status). */
export async function queueConnection(o: Record<string, string | boolean | undefined>): Promise<NatsConnectOptions & { subject: string }> {
  const ca = typeof o.natsTlsCa === 'string' ? await readPem('--nats-tls-ca', o.natsTlsCa) : undefined;
  return {
    servers: serverList(o.nats as string),
    subject: o.subject as string,
    user: o.natsUser as string | undefined,
    pass: process.env.NEUROMFA_NATS_PASS,
    token: (o.natsToken as string | undefined) ?? process.env.NEUROMFA_NATS_TOKEN,
    tls: ca ? { ca: ca.toString() } : undefined,
  };
}

/** A run id as JetStream keys and subjects can carry it. */
export function checkRunId(run: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(run)) throw new UsageError(`run id ${JSON.stringify(run)}: expected 1 to 64 letters, digits, "-" or "_"`);
  return run;
}
