/**
 * A remote worker over gRPC behind the ShardBackend interface: the coordinator runs shards
 * on it exactly as on the thread pool. One backend is one grpc-js channel to one target —
 * `host:port` (or `grpc://host:port`), or `dns:///name:port`, which grpc-js resolves to
 * every address of the name and balances round robin (a Kubernetes headless Service).
 *
 * Errors: the shard's own errors come back typed (InputError for a path outside the
 * worker's model root, ...); a failed call — worker gone, deadline passed, TLS refused, a
 * reply that does not decode — is a retryable TransportError; a message over the size limit
 * is a permanent InputError telling the coordinator to plan smaller shards.
 */
import { ChannelCredentials, Client, Metadata, status, type ChannelOptions, type ServiceError } from '@grpc/grpc-js';
import { fromWireError, InputError, TransportError } from '../../proto/errors.js';
import { decodeReply, DEFAULT_MAX_MESSAGE_BYTES, encodeTask } from '../../proto/codec.js';
import type { WorkerDescription } from '../../proto/describe.js';
import { workerService } from '../../proto/grpc-service.js';
import type { ShardReply, ShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend } from './shard-backend.js';

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

/** The grpc-js target of a --workers entry: `grpc://h:p` → `h:p`; `dns:///…`, `ipv4:…` unchanged. */
export function grpcTarget(address: string): string {
  return address.replace(/^grpcs?:\/\//, '');
}

export class GrpcBackend implements ShardBackend {
  readonly name: string;
  concurrency: number;
  private readonly client: Client;
  private readonly maxMessageBytes: number;
  private readonly deadlineMs: number;

  constructor(
    readonly target: string,
    o: GrpcBackendOptions = {},
  ) {
    this.name = `grpc:${target}`;
    this.concurrency = o.concurrency ?? 1;
    this.maxMessageBytes = o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.deadlineMs = o.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const credentials = o.tls ? ChannelCredentials.createSsl(o.tls.ca ?? null, o.tls.key ?? null, o.tls.cert ?? null) : ChannelCredentials.createInsecure();
    this.client = new Client(grpcTarget(target), credentials, {
      'grpc.max_receive_message_length': this.maxMessageBytes,
      'grpc.max_send_message_length': this.maxMessageBytes,
      // Round robin over every address the resolver gives (dns:/// names with many A records);
      // with one address it is the same as pick_first.
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
      ...o.channelOptions,
    });
  }

  /** A backend whose concurrency is the worker's thread count (unless given), once it answers. */
  static async connect(target: string, o: GrpcBackendOptions & { readyTimeoutMs?: number } = {}): Promise<GrpcBackend> {
    const backend = new GrpcBackend(target, o);
    try {
      await backend.waitForReady(o.readyTimeoutMs ?? 10_000);
      if (o.concurrency === undefined) backend.concurrency = (await backend.describe()).threads;
      return backend;
    } catch (err) {
      await backend.close();
      throw err;
    }
  }

  waitForReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.waitForReady(Date.now() + timeoutMs, (err) =>
        err ? reject(new TransportError(`${this.name}: not reachable within ${timeoutMs} ms (${err.message})`, { cause: err })) : resolve(),
      ),
    );
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
    const replyBytes = await new Promise<Uint8Array>((resolve, reject) => {
      const call = this.client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, { task: bytes }, new Metadata(), { deadline: Date.now() + this.deadlineMs }, (err, value) => {
        options.signal?.removeEventListener('abort', onAbort);
        if (err || !value) reject(this.callError(err, `shard ${task.id}`, options.signal));
        else resolve(value.reply);
      });
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
    return new TransportError(`${this.name}: ${what} failed: ${status[err.code] ?? err.code} ${err.details}`, { cause: err });
  }
}

const mb = (n: number) => (n / (1 << 20)).toFixed(1);
const describeReason = (r: unknown) => (r instanceof Error ? r.message : String(r));
