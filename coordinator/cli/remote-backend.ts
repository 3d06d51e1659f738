import type { Command } from 'commander';
import { TransportError, UsageError } from '../../proto/errors.js';
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
  cmd.option(
    '--model-root <dir>',
    'the model directory the workers mount as their --model-root: local models must lie under it and are sent to workers relative to it (without it, workers get absolute paths)',
  );
  cmd.option('--ship-bytes', "the coordinator reads the checkpoint and sends each shard its rows or weight bytes (workers that reach neither the models nor the hub)");
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
    if (o.modelRoot) throw new UsageError('--model-root names the workers\' model directory: it needs --workers or --nats');
    return undefined;
  }
  if (o.workers && o.nats) throw new UsageError('--workers and --nats exclude each other');
  const deadlineMs = parseNumber('--shard-deadline', o.shardDeadline as string) * 1000;
  let cluster: ClusterBackend | undefined;
  // withBackend (context.ts) wires its progress listener only once this returns; what happens
  // before — workers set aside at the start — is held and reported right after the return.
  const held: ClusterEvent[] = [];
  let report: (e: ClusterEvent) => void = (e) => held.push(e);
  const clusterOptions = { shardDeadlineMs: deadlineMs, onEvent: (e: ClusterEvent) => report(e) };
  if (o.workers) {
    // Transports are loaded when asked for: a local run does not pay for grpc-js and nats.
    const { GrpcBackend } = await import('../../worker/backends/grpc.js');
    if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new UsageError('--tls-cert and --tls-key go together');
    // Any TLS flag means TLS: a client certificate without --tls-ca is checked against the system CAs.
    const tls = o.tlsCa || o.tlsCert ? { ca: await readOpt('--tls-ca', o.tlsCa), cert: await readOpt('--tls-cert', o.tlsCert), key: await readOpt('--tls-key', o.tlsKey) } : undefined;
    const targets = (o.workers as string).split(',').map((s) => s.trim()).filter(Boolean);
    const backends = targets.map((t) => new GrpcBackend(t, { tls, deadlineMs }));
    cluster = new ClusterBackend(backends, clusterOptions);
    try {
      await admitWorkers(cluster, backends, deadlineMs);
    } catch (err) {
      await cluster.close();
      throw err;
    }
  } else {
    const ca = await readOpt('--nats-tls-ca', o.natsTlsCa);
    const { NatsBackend } = await import('../../worker/backends/nats.js');
    const workers = [
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
          clusterOptions.onEvent({ type: 'workers', live });
        },
      }),
    ];
    cluster = new ClusterBackend(workers, clusterOptions);
  }
  setImmediate(() => {
    report = onEvent;
    held.forEach(onEvent);
  });
  return o.shipBytes ? new ShipBytes(cluster) : cluster;
}

/** How long workers may take to answer before the run starts without them. */
const STRAGGLER_MS = 2000;

/**
 * Asks every worker to describe itself, all at once. The run starts as soon as every worker
 * answered or failed (a refused connection fails at once), or STRAGGLER_MS passed: each that
 * did not answer is then reported and set aside, and joins the run when it answers — a worker
 * down at the start costs at most STRAGGLER_MS and a line on stderr, not a silent 30 s. With
 * no worker answering the run still starts, and waits for one as it does when every worker is
 * gone (--shard-deadline); only when all refused does it fail at once.
 */
async function admitWorkers(cluster: ClusterBackend, backends: Array<{ probe(timeoutMs: number): Promise<void> } & ShardBackend>, deadlineMs: number): Promise<void> {
  const answered = new Set<ShardBackend>();
  const failed = new Map<ShardBackend, Error>();
  const probes = backends.map((b) =>
    b.probe(deadlineMs).then(
      () => void answered.add(b),
      (err: Error) => void failed.set(b, err),
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(probes), new Promise((r) => (timer = setTimeout(r, STRAGGLER_MS)))]);
  clearTimeout(timer);
  if (failed.size === backends.length) {
    const [first] = failed.values();
    const more = failed.size > 1 ? ` (and ${failed.size - 1} more workers did not answer)` : '';
    throw new TransportError(`${first.message}${more}`, { cause: first });
  }
  for (const b of backends) {
    if (!answered.has(b)) cluster.setAside(b, failed.get(b)?.message ?? `${b.name}: no answer within ${STRAGGLER_MS / 1000} s; it joins the run when it answers`);
  }
}
