/**
 * A remote worker over gRPC behind the ShardBackend interface: the coordinator runs shards
 * on it exactly as on the thread pool. One backend is one grpc-js channel to one target —
 * `host:port` (or `grpc://host:port`), or `dns:///name:port`, which grpc-js resolves to
 * every address of the name and balances round robin (a Kubernetes headless Service).
 *
 * The channel pings the worker every KEEPALIVE_TIME_MS, calls in flight or not, and drops the
 * connection when a ping is not answered within KEEPALIVE_TIMEOUT_MS: a worker cut off by a
 * network partition (no FIN, no RST — nothing) is noticed within seconds instead of when its
 * shards reach their deadline (600 s by default).
 *
 * Errors: the shard's own errors come back typed (InputError for a path outside the
 * worker's model root, ...); the worker out of reach (UNAVAILABLE: connection dropped or
 * refused, server shutting down) is a WorkerLostError; any other failed call — deadline
 * passed, TLS refused, a reply that does not decode — is a retryable TransportError; a
 * message over the size limit is a permanent InputError telling the coordinator to plan
 * smaller shards.
 */
import { ChannelCredentials, Client, connectivityState, Metadata, status, type ChannelOptions, type ServiceError } from '@grpc/grpc-js';
import { fromWireError, InputError, TransportError } from '../../proto/errors.js';
import { decodeReply, DEFAULT_MAX_MESSAGE_BYTES, encodeTask } from '../../proto/codec.js';
import type { WorkerDescription } from '../../proto/describe.js';
import { workerService } from '../../proto/grpc-service.js';
import type { ShardReply, ShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend } from './shard-backend.js';
import { WorkerLostError, type Rejoinable } from './worker-lost.js';

export interface GrpcBackendOptions {
  /** Shards given to this target at once. @default 1; GrpcBackend.connect uses Describe's threads */
  concurrency?: number;
  /** Deadline of one ComputeShard call, ms. @default 600_000 */
  deadlineMs?: number;
  /** Largest message sent or received, bytes; keep it equal to the workers' --max-message-mb. @default 64 MiB */
  maxMessageBytes?: number;
  /** TLS: `ca` verifies the worker; `cert` + `key` present a client certificate (mutual TLS). Absent: plaintext. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** More grpc-js channel options (e.g. grpc.ssl_target_name_override); they win over ours. */
  channelOptions?: ChannelOptions;
}

const DEFAULT_DEADLINE_MS = 600_000;

/**
 * A ping every 5 s, dropped after 5 s without its answer: a dead link is noticed 5–10 s after
 * it died, for 2 small frames per 5 s per worker. gRPC's A8 advises servers to refuse pings
 * more often than every 5 min (GOAWAY too_many_pings); grpc-js servers, the workers, enforce
 * no such policy (see worker/transport/grpc-server.ts), so nothing in between may either:
 * an L7 proxy must allow pings every 5 s without calls.
 */
export const KEEPALIVE_TIME_MS = 5000;
/** Long enough that a loaded machine's slow ack (a worker or coordinator stalled for seconds) is not a lost worker. */
export const KEEPALIVE_TIMEOUT_MS = 20_000;
/**
 * A call still without a connection after this long gives up: grpc-js sets no connect timeout,
 * and a connection attempt to a partitioned host waits for the kernel's SYN retries (~2 min).
 */
const CONNECT_TIMEOUT_MS = 10_000;

/** The grpc-js target of a --workers entry: `grpc://h:p` → `h:p`; `dns:///…`, `ipv4:…` unchanged. */
export function grpcTarget(address: string): string {
  return address.replace(/^grpcs?:\/\//, '');
}

export class GrpcBackend implements ShardBackend, Rejoinable {
  readonly name: string;
  concurrency: number;
  private readonly client: Client;
  private readonly maxMessageBytes: number;
  private readonly deadlineMs: number;
  /** Whether `concurrency` is settled: given, or read from the worker's Describe. */
  private sized: boolean;
  private closed = false;
  /** The Describe of a probe in progress. */
  private probing?: Promise<WorkerDescription>;
  /** When the channel was last connected: Infinity while it is. */
  private lastReady = 0;

  constructor(
    readonly target: string,
    o: GrpcBackendOptions = {},
  ) {
    this.name = `grpc:${target}`;
    this.concurrency = o.concurrency ?? 1;
    this.sized = o.concurrency !== undefined;
    this.maxMessageBytes = o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.deadlineMs = o.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const credentials = o.tls ? ChannelCredentials.createSsl(o.tls.ca ?? null, o.tls.key ?? null, o.tls.cert ?? null) : ChannelCredentials.createInsecure();
    this.client = new Client(grpcTarget(target), credentials, {
      'grpc.max_receive_message_length': this.maxMessageBytes,
      'grpc.max_send_message_length': this.maxMessageBytes,
      // Round robin over every address the resolver gives (dns:/// names with many A records);
      // with one address it is the same as pick_first.
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
      'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
      'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
      // Pings between shards too: a worker that died while idle is known before it is sent one.
      'grpc.keepalive_permit_without_calls': 1,
      ...o.channelOptions,
    });
    this.followChannel();
  }

  /** Keeps `lastReady`; a watch without a deadline holds no timer, and ends when the channel closes. */
  private followChannel(): void {
    const channel = this.client.getChannel();
    const watch = () => {
      const state = channel.getConnectivityState(false);
      if (state === connectivityState.READY) this.lastReady = Infinity;
      else if (this.lastReady === Infinity) this.lastReady = Date.now();
      if (state !== connectivityState.SHUTDOWN) channel.watchConnectivityState(state, Infinity, watch);
    };
    watch();
  }

  /** A backend whose concurrency is the worker's thread count (unless given), once it answers. */
  static async connect(target: string, o: GrpcBackendOptions & { readyTimeoutMs?: number } = {}): Promise<GrpcBackend> {
    const backend = new GrpcBackend(target, o);
    try {
      await backend.probe(o.readyTimeoutMs ?? 10_000);
      return backend;
    } catch (err) {
      await backend.close();
      throw err;
    }
  }

  /**
   * Asks the worker to describe itself (and sizes `concurrency` from it unless given). Fails
   * fast, as gRPC calls do: a refused connection is an error at once, not after `timeoutMs`;
   * a worker that does not answer at all fails at `timeoutMs`.
   */
  async probe(timeoutMs: number): Promise<void> {
    const asked = this.describe({ deadlineMs: timeoutMs });
    this.probing = asked;
    try {
      const d = await asked;
      if (!this.sized) this.concurrency = d.threads;
      this.sized = true;
    } finally {
      if (this.probing === asked) this.probing = undefined;
    }
  }

  /**
   * Waits, connecting again and again, until the worker answers; rejects once closed. Watches
   * the channel a second at a time: grpc-js's waitForReady outlives close() while a connection
   * attempt hangs, and would hold the process for its whole deadline.
   */
  async whenReachable(): Promise<void> {
    // A probe still out (the run started without this worker) answers first if it can.
    if (this.probing && (await this.probing.then(() => true, () => false))) return;
    const channel = this.client.getChannel();
    for (;;) {
      if (this.closed) throw new TransportError(`${this.name}: closed`);
      try {
        const state = channel.getConnectivityState(true);
        if (state === connectivityState.READY) {
          await this.probe(10_000);
          return;
        }
        await new Promise<void>((resolve) => channel.watchConnectivityState(state, Date.now() + 1000, () => resolve()));
      } catch {
        // It accepts connections but does not answer calls (or the channel just closed): a moment, then again.
        if (!this.closed) await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  describe(options: { deadlineMs?: number } = {}): Promise<WorkerDescription> {
    const m = workerService.Describe;
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, {}, new Metadata(), { deadline: Date.now() + (options.deadlineMs ?? 10_000) }, (err, value) =>
        err || !value ? reject(this.callError(err, 'Describe')) : resolve(value),
      );
    });
  }

  async run(task: ShardTask, options: { signal?: AbortSignal } = {}): Promise<ShardResult> {
    options.signal?.throwIfAborted();
    const bytes = encodeTask(task);
    // Protobuf adds a tag and a length to the bytes field.
    if (bytes.length + 16 > this.maxMessageBytes) {
      throw new InputError(
        `shard ${task.id} is ${mb(bytes.length)} MB encoded, over the ${mb(this.maxMessageBytes)} MB gRPC message limit: plan smaller shards (--shard-mb) or raise --max-message-mb on workers and coordinator`,
      );
    }
    const m = workerService.ComputeShard;
    const sent = Date.now();
    const replyBytes = await new Promise<Uint8Array>((resolve, reject) => {
      let unconnected: WorkerLostError | undefined;
      const call = this.client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, { task: bytes }, new Metadata(), { deadline: Date.now() + this.deadlineMs }, (err, value) => {
        clearTimeout(connectTimer);
        options.signal?.removeEventListener('abort', onAbort);
        if (unconnected) reject(unconnected);
        else if (err || !value) reject(this.callError(err, `shard ${task.id}`, options.signal));
        else resolve(value.reply);
      });
      // Not connected at any moment since it was made: the call cannot be running on the worker.
      const connectTimer = setTimeout(() => {
        if (this.lastReady >= sent) return;
        unconnected = new WorkerLostError(`${this.name}: shard ${task.id}: not reachable: no connection within ${CONNECT_TIMEOUT_MS / 1000} s`);
        call.cancel();
      }, CONNECT_TIMEOUT_MS);
      const onAbort = () => call.cancel();
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
    let reply: ShardReply;
    try {
      reply = decodeReply(replyBytes);
    } catch (err) {
      // The worker's fault, not the shard's: retryable, so the shard is redone elsewhere.
      throw new TransportError(`${this.name}: malformed reply for shard ${task.id}: ${(err as Error).message}`, { cause: err });
    }
    if (!reply.ok) throw fromWireError(reply.error);
    return reply.result;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.client.close();
  }

  private callError(err: ServiceError | null, what: string, signal?: AbortSignal): Error {
    if (!err) return new TransportError(`${this.name}: ${what}: empty response`);
    if (err.code === status.RESOURCE_EXHAUSTED) {
      return new InputError(`${this.name}: ${what}: ${err.details} — plan smaller shards (--shard-mb) or raise --max-message-mb`, { cause: err });
    }
    if (err.code === status.CANCELLED && signal?.aborted) {
      return new TransportError(`${this.name}: ${what} abandoned (${describeReason(signal.reason)})`, { cause: signal.reason });
    }
    if (err.code === status.UNAVAILABLE && err.details === 'Connection dropped') {
      // grpc-js says the same for a keepalive timeout and for a connection closed by the worker.
      return new WorkerLostError(
        `${this.name}: ${what}: the worker stopped answering (UNAVAILABLE, connection dropped: no answer to a keepalive ping within ${KEEPALIVE_TIMEOUT_MS / 1000} s, or it closed the connection)`,
        { cause: err },
      );
    }
    if (err.code === status.UNAVAILABLE) return new WorkerLostError(`${this.name}: ${what}: not reachable: UNAVAILABLE ${err.details}`, { cause: err });
    return new TransportError(`${this.name}: ${what} failed: ${status[err.code] ?? err.code} ${err.details}`, { cause: err });
  }
}

const mb = (n: number) => (n / (1 << 20)).toFixed(1);
const describeReason = (r: unknown) => (r instanceof Error ? r.message : String(r));
