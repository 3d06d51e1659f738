/**
 * A whole worker: the shard service, its transports and its metrics endpoint, started in
 * the order that keeps probes honest (health NOT_SERVING until the pool is ready) and
 * stopped in the order that loses nothing (stop taking shards, finish the ones in flight,
 * then close). `neuromfa worker` wraps it with flags and signals; tests call it directly.
 */
import type { NatsConnection } from 'nats';
import type { ShardBackend } from './backends/shard-backend.js';
import { probeBackends, resolveBackend, type BackendName } from './gpu/backends.js';
import { silentLogger, type Logger } from './log.js';
import { WorkerMetrics } from './metrics.js';
import { ShardService, type ServeOptions } from './serve.js';
import { startGrpcServer, type GrpcServerTls, type GrpcTransport } from './transport/grpc-server.js';
import { natsConnect, type NatsConnectOptions } from './transport/nats-connect.js';
import { startNatsWorker, type NatsTransport } from './transport/nats-worker.js';
import { DEFAULT_SUBJECT } from '../proto/nats-chunks.js';
import { isNoJetStream, streamName } from '../proto/jetstream.js';
import { startJetStreamWorker, type JetStreamTransport } from './transport/jetstream-worker.js';

export interface WorkerOptions {
  threads: number;
  modelRoot?: string;
  maxMessageBytes: number;
  /** Serve gRPC on host:port (port 0: a free one). */
  grpc?: { address: string; tls?: GrpcServerTls };
  /** Join the deployment's queue group on these NATS servers. */
  nats?: NatsConnectOptions & { subject?: string; heartbeatMs?: number };
  /** Serve /metrics and /healthz on this port (0: a free one). */
  metrics?: { port: number; host?: string };
  log?: Logger;
  /** Where shards run; a thread pool of `threads` unless given. */
  backend?: ShardBackend;
  /** Where the pool computes partition sums (`--backend`). @default f64 */
  partitionBackend?: 'auto' | BackendName;
}

/**
 * `--backend` settled before anything starts: the backend the pool's threads will open (auto
 * resolved) and every backend's availability, for describe. A named backend that cannot run
 * here is a BackendUnavailableError, so a worker never starts on a backend it does not have.
 */
export async function settlePartitionBackend(request: 'auto' | BackendName): Promise<NonNullable<ServeOptions['partitionBackend']> & { passedOver: string[] }> {
  // Probed first: auto then reuses the probes instead of opening every device again.
  const statuses = await probeBackends();
  const chosen = await resolveBackend(request);
  return {
    name: chosen.name,
    device: chosen.device,
    backends: statuses.map((s) => ({ name: s.name, available: s.available, detail: (s.available ? s.device : s.reason) ?? '' })),
    passedOver: chosen.passedOver.map((s) => `${s.name}: ${s.reason}`),
  };
}

export interface RunningWorker {
  readonly service: ShardService;
  readonly grpcPort?: number;
  readonly metricsPort?: number;
  /** Stops taking shards, finishes the ones in flight, closes transports, pool and metrics. */
  stop(): Promise<void>;
}

export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  const log = o.log ?? silentLogger;
  const metrics = new WorkerMetrics();
  const transports = [...(o.grpc ? ['grpc'] : []), ...(o.nats ? ['nats'] : [])];
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close();
  };
  try {
    const partitionBackend = await settlePartitionBackend(o.partitionBackend ?? 'f64');
    log.info('partition backend', { backend: partitionBackend.name, device: partitionBackend.device, requested: o.partitionBackend ?? 'f64', passedOver: partitionBackend.passedOver });
    const service = new ShardService({ threads: o.threads, modelRoot: o.modelRoot, maxMessageBytes: o.maxMessageBytes, metrics, log, backend: o.backend, partitionBackend });
    closers.push(() => service.close());
    let metricsPort: number | undefined;
    if (o.metrics) {
      const m = await metrics.listen(o.metrics.port, o.metrics.host, () => service.isReady);
      metricsPort = m.port;
      closers.push(m.close);
      log.info('metrics listening', { port: m.port, path: '/metrics' });
    }
    let grpc: GrpcTransport | undefined;
    if (o.grpc) {
      grpc = await startGrpcServer(service, { address: o.grpc.address, maxMessageBytes: o.maxMessageBytes, tls: o.grpc.tls, transports });
      const g = grpc;
      closers.push(async () => g.forceShutdown());
      log.info('grpc listening', { address: o.grpc.address, port: grpc.port, tls: Boolean(o.grpc.tls), mutualTls: Boolean(o.grpc.tls?.requireClientCert) });
    }
    await service.whenReady();
    let nats: NatsTransport | undefined;
    let jetstream: JetStreamTransport | undefined;
    if (o.nats) {
      const nc: NatsConnection = await natsConnect({ ...o.nats, name: o.nats.name ?? 'neuromfa-worker', waitOnFirstConnect: o.nats.waitOnFirstConnect ?? true });
      closers.push(() => nc.close());
      watchNats(nc, log);
      nats = await startNatsWorker(service, nc, { subject: o.nats.subject, maxMessageBytes: o.maxMessageBytes, heartbeatMs: o.nats.heartbeatMs, transports });
      log.info('nats subscribed', { servers: o.nats.servers, subject: o.nats.subject ?? DEFAULT_SUBJECT, maxPayload: nc.info?.max_payload });
      // Also a pull consumer of the JetStream work queue, where the server has JetStream.
      jetstream = await startJetStreamWorker(service, nc, { subject: o.nats.subject, maxMessageBytes: o.maxMessageBytes }).catch((err: unknown) => {
        if (!isNoJetStream(err)) throw err;
        log.info('no JetStream on the server: core NATS queue group only', { error: (err as Error).message });
        return undefined;
      });
      if (jetstream) log.info('jetstream pulling', { stream: streamName(o.nats.subject) });
    }
    log.info('ready', { threads: o.threads, backend: partitionBackend.name, transports, grpcPort: grpc?.port, metricsPort, modelRoot: o.modelRoot ?? null });
    let stopping: Promise<void> | undefined;
    return {
      service,
      grpcPort: grpc?.port,
      metricsPort,
      stop() {
        stopping ??= (async () => {
          log.info('stopping: no new shards, finishing the ones in flight', { inFlight: service.inFlight });
          // JetStream first: core NATS's shutdown drains the connection both share.
          await Promise.all([grpc?.shutdown(), jetstream?.shutdown().then(() => nats?.shutdown()) ?? nats?.shutdown()]);
          await service.idle();
          await closeAll();
          log.info('stopped', { shards: metrics.total('neuromfa_worker_shards_total'), errors: metrics.total('neuromfa_worker_errors_total') });
        })();
        return stopping;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** Connection events into the log: a restarted nats-server shows as disconnect, then reconnect. */
function watchNats(nc: NatsConnection, log: Logger): void {
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') log.warn(`nats ${s.type}`, { data: String(s.data) });
    }
  })();
}
