import { TransportError, UsageError } from '../../proto/errors.js';
import type { ShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend, TextCache } from '../../worker/backends/shard-backend.js';
import type { NatsConnectOptions } from '../../worker/transport/nats-connect.js';
import { isHubRef } from '../../worker/io/hub/ref.js';
import { defaultRunId } from '../run/run-id.js';
import type { ClusterBackend, ClusterEvent } from '../dispatch/cluster-backend.js';
import { parseInteger, parseNumber, readPem } from './flags.js';
import { checkRunId, queueConnection } from './queue-flags.js';

/** Prepends each shard's bytes before handing it on. */
class ShipBytes implements ShardBackend {
  readonly name: string;
  constructor(private readonly inner: ShardBackend) {
    this.name = `${inner.name}+bytes`;
  }
  get concurrency(): number {
    return this.inner.concurrency;
  }
  get workers(): number | undefined {
    return this.inner.workers;
  }
  sharedCache(): TextCache | undefined {
    return this.inner.sharedCache?.();
  }
  async run(task: ShardTask, options?: { signal?: AbortSignal }): Promise<ShardResult> {
    // Loaded with the first shard: only --ship-bytes runs use it.
    const { withInlineBytes } = await import('../plan/ship-bytes.js');
    return this.inner.run(await withInlineBytes(task), options);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const readOpt = async (flag: string, f: unknown) => (typeof f === 'string' ? readPem(flag, f) : undefined);

/** The command line being run, and where the backend says what a run should know. */
export interface Invocation {
  argv: readonly string[];
  command: string;
  /** Where the run's id and a fallback to core NATS are said. */
  err: (text: string) => void;
}

/**
 * With --nats, the JetStream work queue when the server has JetStream: shards and results live
 * in the server, so a coordinator that dies loses nothing (`collect RUN` finishes the run).
 * Without JetStream, undefined: the core-NATS request/reply dispatcher, said in one line.
 */
async function jetStreamBackend(o: Record<string, string | boolean | undefined>, connect: NatsConnectOptions & { subject: string }, deadlineMs: number, invocation: Invocation): Promise<ShardBackend | undefined> {
  const [{ JetStreamBackend }, { isNoJetStream }] = await Promise.all([import('../../worker/backends/jetstream.js'), import('../../proto/jetstream.js')]);
  const runId = checkRunId((o.runId as string | undefined) ?? defaultRunId(invocation.argv, process.cwd()));
  let backend;
  try {
    backend = await JetStreamBackend.connect({
      ...connect,
      runId,
      command: invocation.command,
      argv: [...invocation.argv],
      // Local files may change between runs: their shards' results are this run's alone.
      // Hub references are pinned to a commit and edge lists travel in the task: those are global.
      scopeOf: (t) => (namesLocalFiles(t) ? runId : undefined),
      deadlineMs,
      ...(o.ackWait !== undefined ? { queue: { ackWaitMs: parseInteger('--ack-wait', o.ackWait as string, 1, 86_400) * 1000 } } : {}),
    });
  } catch (err) {
    if (!isNoJetStream(err)) throw err;
    invocation.err(`neuromfa: ${(err as Error).message}; shards go by core-NATS request/reply instead, and a coordinator that dies loses the shards in flight\n`);
    return undefined;
  }
  await backend.countWorkers();
  invocation.err(`neuromfa: run ${runId} on JetStream (${backend.workers} workers now): \`neuromfa status ${runId}\` shows its progress, \`neuromfa collect ${runId}\` finishes it if this process dies\n`);
  // Not an error: a deployment scaled to zero (KEDA) starts workers when shards wait.
  if (backend.workers === 0) invocation.err(`neuromfa: no worker answers on ${connect.subject} now: the shards wait in the queue until one starts\n`);
  return backend;
}

/** Tasks whose result depends on files that may change: a local model path, or matrix parts on disk. */
function namesLocalFiles(t: ShardTask): boolean {
  if (t.input.kind === 'model') return !isHubRef(t.input.model);
  return t.input.kind === 'matrix' && !t.input.inline && t.input.parts.some((p) => !isHubRef(p.file));
}

/** The remote backend the flags ask for, or undefined for the local thread pool. */
export async function remoteBackend(o: Record<string, string | boolean | undefined>, onEvent: (e: ClusterEvent) => void, invocation: Invocation): Promise<ShardBackend | undefined> {
  if (!o.workers && !o.nats) {
    if (o.shipBytes) throw new UsageError('--ship-bytes needs --workers or --nats');
    if (o.modelRoot) throw new UsageError('--model-root names the workers\' model directory: it needs --workers or --nats');
    return undefined;
  }
  if (o.workers && o.nats) throw new UsageError('--workers and --nats exclude each other');
  const deadlineMs = parseNumber('--shard-deadline', o.shardDeadline as string) * 1000;
  // Loaded once workers are asked for: a local run does not pay for the dispatcher.
  const { ClusterBackend } = await import('../dispatch/cluster-backend.js');
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
    const connect = await queueConnection(o);
    const queued = await jetStreamBackend(o, connect, deadlineMs, invocation);
    if (queued) return o.shipBytes ? new ShipBytes(queued) : queued;
    const { NatsBackend } = await import('../../worker/backends/nats.js');
    const workers = [
      await NatsBackend.connect({
        ...connect,
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
