import type { Command } from 'commander';
import { UsageError } from '../../proto/errors.js';
import { DEFAULT_SUBJECT } from '../../proto/nats-chunks.js';
import type { ShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import { ClusterBackend, type ClusterEvent } from '../dispatch/cluster-backend.js';
import { withInlineBytes } from '../plan/ship-bytes.js';
import { parseNumber, readPem, serverList } from './flags.js';

/** Flags that send shards to remote workers instead of the local thread pool. */
export function addClusterFlags(cmd: Command): void {
  cmd.option('--workers <list>', 'gRPC workers: comma-separated grpc://host:port, or dns:///service:port (round robin over a headless service)');
  cmd.option('--nats <url>', 'NATS server of a worker deployment (nats://host:4222)');
  cmd.option('--subject <s>', 'NATS subject the workers listen on', DEFAULT_SUBJECT);
  cmd.option('--ship-bytes', "send each shard's weight bytes with it (workers without the model on disk)");
  cmd.option('--shard-deadline <s>', 'seconds one shard may take on one worker before it is retried elsewhere', '600');
  cmd.option('--tls-ca <file>', 'gRPC: CA certificate that signed the workers\' certificates (enables TLS)');
  cmd.option('--tls-cert <file>', 'gRPC: client certificate, for mutual TLS');
  cmd.option('--tls-key <file>', 'gRPC: client key, for mutual TLS');
  cmd.option('--nats-user <user>', 'NATS user (password from NEUROMFA_NATS_PASS)');
  cmd.option('--nats-token <token>', 'NATS token (or NEUROMFA_NATS_TOKEN)');
  cmd.option('--nats-tls-ca <file>', 'NATS: CA certificate of the server (enables TLS)');
}

/** Prepends each shard's bytes before handing it on. */
class ShipBytes implements ShardBackend {
  readonly name: string;
  constructor(private readonly inner: ClusterBackend) {
    this.name = `${inner.name}+bytes`;
  }
  get concurrency(): number {
    return this.inner.concurrency;
  }
  get workers(): number {
    return this.inner.workers;
  }
  async run(task: ShardTask, options?: { signal?: AbortSignal }): Promise<ShardResult> {
    return this.inner.run(await withInlineBytes(task), options);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const readOpt = async (flag: string, f: unknown) => (typeof f === 'string' ? readPem(flag, f) : undefined);

/** The remote backend the flags ask for, or undefined for the local thread pool. */
export async function remoteBackend(o: Record<string, string | boolean | undefined>, onEvent: (e: ClusterEvent) => void): Promise<ShardBackend | undefined> {
  if (!o.workers && !o.nats) {
    if (o.shipBytes) throw new UsageError('--ship-bytes needs --workers or --nats');
    return undefined;
  }
  if (o.workers && o.nats) throw new UsageError('--workers and --nats exclude each other');
  const deadlineMs = parseNumber('--shard-deadline', o.shardDeadline as string) * 1000;
  let workers: ShardBackend[];
  let cluster: ClusterBackend | undefined;
  if (o.workers) {
    // Transports are loaded when asked for: a local run does not pay for grpc-js and nats.
    const { GrpcBackend } = await import('../../worker/backends/grpc.js');
    if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new UsageError('--tls-cert and --tls-key go together');
    // Any TLS flag means TLS: a client certificate without --tls-ca is checked against the system CAs.
    const tls = o.tlsCa || o.tlsCert ? { ca: await readOpt('--tls-ca', o.tlsCa), cert: await readOpt('--tls-cert', o.tlsCert), key: await readOpt('--tls-key', o.tlsKey) } : undefined;
    const targets = (o.workers as string).split(',').map((s) => s.trim()).filter(Boolean);
    // A worker that is down at the start is left out (and reported); the run needs one.
    const settled = await Promise.allSettled(targets.map((t) => GrpcBackend.connect(t, { tls, deadlineMs, readyTimeoutMs: 30_000 })));
    workers = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = settled.flatMap((r, i) => (r.status === 'rejected' ? [{ target: targets[i], reason: r.reason as Error }] : []));
    if (workers.length === 0) throw failed[0].reason;
    for (const f of failed) onEvent({ type: 'worker-lost', worker: f.target, reason: f.reason.message, live: workers.length });
  } else {
    const ca = await readOpt('--nats-tls-ca', o.natsTlsCa);
    const { NatsBackend } = await import('../../worker/backends/nats.js');
    workers = [
      await NatsBackend.connect({
        servers: serverList(o.nats as string),
        subject: o.subject as string,
        user: o.natsUser as string | undefined,
        pass: process.env.NEUROMFA_NATS_PASS,
        token: (o.natsToken as string | undefined) ?? process.env.NEUROMFA_NATS_TOKEN,
        tls: ca ? { ca: ca.toString() } : undefined,
        deadlineMs,
        watchMs: 5000,
        onWorkers: (live) => {
          cluster?.capacityChanged();
          onEvent({ type: 'workers', live });
        },
      }),
    ];
  }
  cluster = new ClusterBackend(workers, { shardDeadlineMs: deadlineMs, onEvent });
  return o.shipBytes ? new ShipBytes(cluster) : cluster;
}
