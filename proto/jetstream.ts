/**
 * The JetStream work queue: names, keys and the value format shared by the coordinator's
 * JetStreamBackend and the workers. The queue's state lives in the NATS server (a work-queue
 * stream of shard messages, KV buckets of results, payloads and run manifests, all on file
 * storage), so a coordinator that dies loses nothing and any coordinator collects the results.
 *
 *   coordinator → <subject>.jobs   task bytes, or only headers when the task is in the payloads bucket
 *   worker      → neuromfa-results[key]   encodeReply(reply), then acks the message
 *
 * A key is the sha256 of the task with its id zeroed: the same work has the same key in any
 * run, so a result is computed once and found again by a restarted coordinator.
 */
import { createHash } from 'node:crypto';
import { AckPolicy, RetentionPolicy, StorageType, nanos, type JetStreamClient, type JetStreamManager, type KV, type NatsConnection, type NatsError, type StreamInfo } from 'nats';
import { encodeTask } from './codec.js';
import { MessageFormatError, TransportError, UsageError } from './errors.js';
import { DEFAULT_SUBJECT } from './nats-chunks.js';
import type { ShardTask } from './shard.js';

export const STREAM = 'NEUROMFA_SHARDS';
export const RESULTS_BUCKET = 'neuromfa-results';
export const RUNS_BUCKET = 'neuromfa-runs';
export const CACHE_BUCKET = 'neuromfa-cache';
export const PAYLOADS_BUCKET = 'neuromfa-payloads';
export const DURABLE = 'neuromfa-workers';

export const JS_HEADERS = {
  /** The shard's key in the results (and payloads) bucket. */
  key: 'Neuromfa-Key',
  /** Epoch ms after which the worker stops extending the ack deadline: a hung shard is then redelivered. */
  deadline: 'Neuromfa-Deadline-Ms',
  /** Present when the task is in the payloads bucket under the key (the message has no body): its byte size. */
  chunks: 'Neuromfa-Chunks',
} as const;

/** The stream's one subject, under the deployment's subject. */
export function jobsSubject(subject = DEFAULT_SUBJECT): string {
  return `${subject}.jobs`;
}

/**
 * The default deployment's stream is STREAM; another `--subject` gets a stream of its own,
 * because a work-queue stream allows one consumer per subject and deployments must not share.
 */
export function streamName(subject = DEFAULT_SUBJECT): string {
  return subject === DEFAULT_SUBJECT ? STREAM : `${STREAM}_${subject.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/** Content address of a task; `scope` (a run id) for tasks whose files may change between runs. */
export function shardKey(task: ShardTask, scope?: string): string {
  if (scope !== undefined && !/^[A-Za-z0-9_=-]+$/.test(scope)) throw new UsageError(`run id ${JSON.stringify(scope)}: use letters, digits, '_', '-' and '=' only`);
  const hash = createHash('sha256').update(encodeTask({ ...task, id: 0 })).digest('hex');
  return scope === undefined ? hash : `${scope}.${hash}`;
}

/** Largest KV value stored whole on this server: max_payload less room for subject and headers. */
export function valueLimit(nc: NatsConnection): number {
  return Math.max(1024, (nc.info?.max_payload ?? 1 << 20) - 4096);
}

// A head entry starts with this; stored values are msgpack maps or JSON, which never do.
const HEAD_MAGIC = new TextEncoder().encode('\0neuromfa-parts\0');

interface Head {
  parts: number;
  bytes: number;
  /** First 16 hex of the value's sha256: names the parts, so two writers of one key never mix parts. */
  digest: string;
}

const digestOf = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex').slice(0, 16);
const partKey = (key: string, h: Head, i: number) => `${key}.${h.digest}.${i}`;

/** Whether a stored value is the head of a split one (status counts those without reading the parts). */
export function isSplitHead(value: Uint8Array): boolean {
  return value.length >= HEAD_MAGIC.length && HEAD_MAGIC.every((b, i) => value[i] === b);
}

/** The head of a split value, undefined for a whole one; a damaged head is a MessageFormatError naming `where`. */
function parseHead(value: Uint8Array, where: string): Head | undefined {
  if (!isSplitHead(value)) return undefined;
  let h: Head | undefined;
  try {
    h = JSON.parse(new TextDecoder().decode(value.subarray(HEAD_MAGIC.length))) as Head;
  } catch {
    // Reported below, with the other ways a head can be wrong.
  }
  if (!(h && Number.isSafeInteger(h.parts) && h.parts >= 1 && Number.isSafeInteger(h.bytes) && typeof h.digest === 'string' && /^[0-9a-f]{16}$/.test(h.digest))) {
    throw new MessageFormatError(`${where}: malformed head entry`);
  }
  return h;
}

/**
 * Stores `bytes` at `key`, split into parts of at most `maxChunk` bytes when it is larger.
 * The parts are written before the head, so a reader that sees the head finds them.
 */
export async function putLarge(kv: KV, key: string, bytes: Uint8Array, maxChunk: number): Promise<void> {
  if (bytes.length <= maxChunk) {
    await kv.put(key, bytes);
    return;
  }
  const head: Head = { parts: Math.ceil(bytes.length / maxChunk), bytes: bytes.length, digest: digestOf(bytes) };
  await Promise.all(Array.from({ length: head.parts }, (_, i) => kv.put(partKey(key, head, i), bytes.subarray(i * maxChunk, (i + 1) * maxChunk))));
  const json = new TextEncoder().encode(JSON.stringify(head));
  const value = new Uint8Array(HEAD_MAGIC.length + json.length);
  value.set(HEAD_MAGIC);
  value.set(json, HEAD_MAGIC.length);
  await kv.put(key, value);
}

/** The value at `key` reassembled, or null when there is none; over `maxBytes` is a MessageFormatError. */
export async function getLarge(kv: KV, key: string, maxBytes = Number.MAX_SAFE_INTEGER): Promise<Uint8Array | null> {
  const e = await kv.get(key);
  if (!e || e.operation !== 'PUT') return null;
  const where = `${e.bucket} ${key}`;
  const head = parseHead(e.value, where);
  // The client hands out Buffers: a plain view, like the reassembled values.
  if (!head) return new Uint8Array(e.value.buffer, e.value.byteOffset, e.value.byteLength);
  if (head.bytes > maxBytes) throw new MessageFormatError(`${where}: value of ${head.bytes} bytes is over the ${maxBytes}-byte limit: plan smaller shards (--shard-mb) or raise --max-message-mb`);
  const parts = await Promise.all(Array.from({ length: head.parts }, (_, i) => kv.get(partKey(key, head, i))));
  const out = new Uint8Array(head.bytes);
  let at = 0;
  parts.forEach((p, i) => {
    if (!p || p.operation !== 'PUT') throw new MessageFormatError(`${where}: part ${i} of ${head.parts} is missing`);
    if (at + p.value.length > head.bytes) throw new MessageFormatError(`${where}: parts exceed the announced ${head.bytes} bytes`);
    out.set(p.value, at);
    at += p.value.length;
  });
  if (at !== head.bytes || digestOf(out) !== head.digest) throw new MessageFormatError(`${where}: parts hold ${at} bytes that do not match the head's digest`);
  return out;
}

/** Removes a value and its parts (a payload once its result is stored). */
export async function deleteLarge(kv: KV, key: string): Promise<void> {
  const e = await kv.get(key);
  const head = e?.operation === 'PUT' ? parseHead(e.value, `${e.bucket} ${key}`) : undefined;
  await kv.purge(key);
  if (head) await Promise.all(Array.from({ length: head.parts }, (_, i) => kv.purge(partKey(key, head, i))));
}

export interface RunManifest {
  id: string;
  command: string;
  argv: string[];
  cwd: string;
  /** ISO time of the run's first start. */
  created: string;
  /** Every shard key the run published or collected, in order. */
  keys: string[];
}

/** `maxChunk` defaults to a size any server takes (max_payload is 1 MB unless lowered). */
export async function putRun(kv: KV, m: RunManifest, maxChunk = 60 << 10): Promise<void> {
  await putLarge(kv, m.id, new TextEncoder().encode(JSON.stringify(m)), maxChunk);
}

export async function getRun(kv: KV, id: string): Promise<RunManifest | null> {
  const bytes = await getLarge(kv, id);
  if (!bytes) return null;
  try {
    const m = JSON.parse(new TextDecoder().decode(bytes)) as RunManifest;
    if (typeof m.id !== 'string' || !Array.isArray(m.keys)) throw new Error('not a run manifest');
    return m;
  } catch (err) {
    throw new MessageFormatError(`${RUNS_BUCKET} ${id}: ${(err as Error).message}`, { cause: err });
  }
}

export interface QueueOptions {
  /** The deployment's subject; the stream takes `<subject>.jobs`. */
  subject: string;
  /** A delivery not acked nor extended (`working`) for this long is redelivered. @default 30_000 */
  ackWaitMs?: number;
  /** Deliveries of one shard before it is given up. @default 5 */
  maxDeliver?: number;
  /** Redelivery delays after each missed ack, ms (the consumer's backoff; the server then takes the first as ack_wait). */
  backoffMs?: number[];
  /** Replicas of the stream and buckets (a JetStream cluster). @default 1 */
  replicas?: number;
}

export interface Queue {
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  jobs: string;
  results: KV;
  runs: KV;
  cache: KV;
  payloads: KV;
}

/** A server (or account) without JetStream: `isNoJetStream` tells it from other transport errors. */
class NoJetStreamError extends TransportError {
  override readonly code: string = 'NO_JETSTREAM';
}

export function isNoJetStream(err: unknown): boolean {
  return err instanceof NoJetStreamError;
}

const apiCode = (err: unknown) => (err as NatsError).api_error?.err_code;
const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;

/** A stream (a KV bucket is one) that does not exist. */
export const isStreamNotFound = (err: unknown) => apiCode(err) === STREAM_NOT_FOUND;

/** The JetStream manager, or a typed error: no JetStream on that server at all, or none answering now. */
export async function jetStreamManager(nc: NatsConnection): Promise<JetStreamManager> {
  try {
    return await nc.jetstreamManager();
  } catch (err) {
    const server = nc.getServer();
    // 503 (no responders to $JS.API) from a server whose INFO has no `jetstream`: not enabled.
    if ((err as NatsError).code === '503' && !nc.info?.jetstream) throw new NoJetStreamError(`NATS server ${server} has no JetStream: start it with -js / \`jetstream {}\``, { cause: err });
    throw new TransportError(`NATS server ${server}: JetStream not answering (${(err as Error).message})`, { cause: err });
  }
}

/**
 * Calls `f` until it succeeds, `tries` times at most `delayMs` apart, while `alive()`: what a
 * KV or stream operation needs around a nats-server restart (JetStream answers again only
 * once it has recovered its streams).
 */
export async function withRetry<T>(f: () => Promise<T>, o: { tries?: number; delayMs?: number; alive?: () => boolean } = {}): Promise<T> {
  const tries = o.tries ?? 60;
  for (let attempt = 1; ; attempt++) {
    try {
      return await f();
    } catch (err) {
      if (attempt >= tries || err instanceof MessageFormatError || (o.alive && !o.alive())) throw err;
      await new Promise((r) => setTimeout(r, o.delayMs ?? 500));
    }
  }
}

/**
 * The stream, its durable consumer and the buckets, created when missing and reused when there
 * (a worker and a coordinator may race to create them). Ack policy options are applied to an
 * existing consumer only when given, so a worker that names none never undoes a coordinator's.
 */
export async function ensureQueue(nc: NatsConnection, o: QueueOptions): Promise<Queue> {
  const jsm = await jetStreamManager(nc);
  const stream = streamName(o.subject);
  const jobs = jobsSubject(o.subject);
  const replicas = o.replicas ?? 1;
  const existing = await jsm.streams.info(stream).catch((err) => {
    if (isStreamNotFound(err)) return null;
    throw err;
  });
  const info: StreamInfo =
    existing ??
    (await jsm.streams
      // duplicate_window: a shard re-published within the hour (a restarted coordinator) is dropped.
      .add({ name: stream, subjects: [jobs], retention: RetentionPolicy.Workqueue, storage: StorageType.File, duplicate_window: nanos(3_600_000), num_replicas: replicas })
      .catch((err) => jsm.streams.info(stream).catch(() => Promise.reject(err))));
  if (!info.config.subjects?.includes(jobs)) throw new UsageError(`stream ${stream} carries ${info.config.subjects?.join(', ')}, not ${jobs}: another deployment's subject maps to the same stream`);

  const policy = {
    ...(o.ackWaitMs !== undefined ? { ack_wait: nanos(o.ackWaitMs) } : {}),
    ...(o.maxDeliver !== undefined ? { max_deliver: o.maxDeliver } : {}),
    ...(o.backoffMs !== undefined ? { backoff: o.backoffMs.map(nanos) } : {}),
  };
  const consumer = await jsm.consumers.info(stream, DURABLE).catch((err) => {
    if (apiCode(err) === CONSUMER_NOT_FOUND) return null;
    throw err;
  });
  if (!consumer) {
    const config = { durable_name: DURABLE, ack_policy: AckPolicy.Explicit, ack_wait: nanos(30_000), max_deliver: 5, max_ack_pending: 100_000, filter_subject: jobs, ...policy };
    await jsm.consumers.add(stream, config).catch((err) => jsm.consumers.info(stream, DURABLE).catch(() => Promise.reject(err)));
  } else if (Object.entries(policy).some(([k, v]) => JSON.stringify(v) !== JSON.stringify((consumer.config as unknown as Record<string, unknown>)[k]))) {
    await jsm.consumers.update(stream, DURABLE, policy);
  }

  const js = nc.jetstream();
  // A racing creator makes views.kv fail once with "already in use": the second call binds.
  const bucket = (name: string) => js.views.kv(name, { history: 1, storage: StorageType.File, replicas }).catch(() => js.views.kv(name, { history: 1, storage: StorageType.File, replicas }));
  const [results, runs, cache, payloads] = await Promise.all([RESULTS_BUCKET, RUNS_BUCKET, CACHE_BUCKET, PAYLOADS_BUCKET].map(bucket));
  return { js, jsm, stream, jobs, results, runs, cache, payloads };
}
