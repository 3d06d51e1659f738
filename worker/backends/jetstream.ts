/**
 * The coordinator's side of the JetStream work queue (proto/jetstream.ts) behind the
 * ShardBackend interface. run() looks the shard's key up in the results bucket — a result
 * already there (an earlier run, a coordinator that died) is collected, not recomputed — and
 * otherwise publishes the shard once (msgID = key, so the server drops a re-publish) and waits
 * for the key to appear. Every shard is published at once and the server queues them; the
 * coordinator keeps no timer on a shard: a lost worker is the server's to redeliver.
 *
 * One KV watch serves every waiting shard. It is started before the first publish, and each
 * shard reads its key once after its waiter is in place, so a result stored at any moment is
 * seen by one or the other. After a reconnect the watch is started anew and every waiting key
 * is read again, which covers the results stored while the connection was down.
 */
import { Events, headers, KvWatchInclude, type KvEntry, type NatsConnection, type QueuedIterator } from 'nats';
import { decodeReply, encodeTask } from '../../proto/codec.js';
import { fromWireError, NeuromfaError, TransportError, UsageError } from '../../proto/errors.js';
import {
  deleteLarge, DURABLE, ensureQueue, isStreamNotFound, getLarge, getRun, isSplitHead, jetStreamManager, JS_HEADERS, putLarge, putRun, RESULTS_BUCKET, RUNS_BUCKET,
  shardKey, streamName, valueLimit, withRetry, type Queue, type QueueOptions, type RunManifest,
} from '../../proto/jetstream.js';
import { DEFAULT_SUBJECT } from '../../proto/nats-chunks.js';
import type { ShardReply, ShardResult, ShardTask } from '../../proto/shard.js';
import { inLanes } from '../io/in-lanes.js';
import { drainOrClose, natsConnect, type NatsConnectOptions } from '../transport/nats-connect.js';
import { describeWorkers } from './nats-describe.js';
import type { ShardBackend, TextCache } from './shard-backend.js';

export type JetStreamEvent = { type: 'published' | 'collected' | 'computed' | 'failed'; id: number; key: string };

export interface JetStreamBackendOptions {
  /** The deployment's subject, as the workers'. @default 'neuromfa.shards' */
  subject?: string;
  /** Names the run's manifest; a coordinator restarted with the same id continues the run. */
  runId: string;
  /** The command line, for `status RUN`. */
  command?: string;
  argv?: string[];
  /** A scope for tasks whose result depends on more than their bytes (files that may change): the run id. */
  scopeOf?: (task: ShardTask) => string | undefined;
  /** Workers extend a shard's ack deadline for this long at most, ms. @default 600_000 */
  deadlineMs?: number;
  onEvent?: (e: JetStreamEvent) => void;
  /** Ack policy of the queue's consumer (applied when given). */
  queue?: Omit<QueueOptions, 'subject'>;
}

/**
 * `total` shards in the run's manifest, `done` answered with a result, `failed` with an error;
 * `pending` shards in the queue, all runs together (waiting, or delivered and not yet acked);
 * `redelivered`: shards delivered more than once and not yet acked (a worker lost or slow now; 0 once they are answered).
 */
export interface JetStreamRunStatus {
  manifest: RunManifest;
  total: number;
  done: number;
  failed: number;
  pending: number;
  redelivered?: number;
}

type Waiter = { reply(r: ShardReply): void; fail(err: Error): void };

export class JetStreamBackend implements ShardBackend {
  readonly name: string;
  /** Every shard is published at once; the server queues them for the workers. */
  readonly concurrency = 100_000;
  /** Workers that answered the last countWorkers(); unknown before. */
  workers?: number;
  /** Shards put on the queue (not counting duplicates the server dropped), results found in the bucket already, results that arrived while waiting. */
  published = 0;
  collected = 0;
  computed = 0;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly known: Set<string>;
  private readonly deadlineMs: number;
  private watcher?: QueuedIterator<KvEntry>;
  private closed = false;
  private saveTimer?: NodeJS.Timeout;
  /** Counts the watches started; only the latest one lives. */
  private watches = 0;
  private saving = Promise.resolve();
  private readonly alive = () => !this.closed && !this.nc.isClosed();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly q: Queue,
    private readonly manifest: RunManifest,
    private readonly o: JetStreamBackendOptions,
  ) {
    this.name = `jetstream:${o.subject ?? DEFAULT_SUBJECT}`;
    this.deadlineMs = o.deadlineMs ?? 600_000;
    this.known = new Set(manifest.keys);
    void (async () => {
      for await (const s of nc.status()) if (s.type === Events.Reconnect) this.rewatch();
    })().catch(() => undefined);
  }

  static async connect(o: NatsConnectOptions & JetStreamBackendOptions): Promise<JetStreamBackend> {
    const nc = await natsConnect(o);
    try {
      const q = await ensureQueue(nc, { ...o.queue, subject: o.subject ?? DEFAULT_SUBJECT });
      const manifest = (await getRun(q.runs, o.runId)) ?? { id: o.runId, command: o.command ?? '', argv: o.argv ?? [], cwd: process.cwd(), created: new Date().toISOString(), keys: [] };
      // Written at once, so `status RUN` knows the run from its start.
      await putRun(q.runs, manifest, valueLimit(nc));
      const backend = new JetStreamBackend(nc, q, manifest, o);
      await backend.watch();
      return backend;
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  async run(task: ShardTask, options: { signal?: AbortSignal } = {}): Promise<ShardResult> {
    const key = shardKey(task, this.o.scopeOf?.(task));
    this.record(key);
    const reply = await this.answer(task, key, options.signal);
    // The key ignores the id: the stored result may come from the same work under another id.
    if (reply.ok) return { ...reply.result, id: task.id };
    this.o.onEvent?.({ type: 'failed', id: task.id, key });
    throw fromWireError(reply.error);
  }

  private answer(task: ShardTask, key: string, signal?: AbortSignal): Promise<ShardReply> {
    signal?.throwIfAborted();
    return new Promise<ShardReply>((resolve, reject) => {
      const settle = (how: 'collected' | 'computed' | 'failed', f: () => void) => {
        const set = this.waiters.get(key);
        if (!set?.delete(waiter)) return;
        if (set.size === 0) this.waiters.delete(key);
        signal?.removeEventListener('abort', onAbort);
        if (how !== 'failed') {
          this[how]++;
          this.o.onEvent?.({ type: how, id: task.id, key });
        }
        f();
      };
      const waiter: Waiter = { reply: (r) => settle('computed', () => resolve(r)), fail: (err) => settle('failed', () => reject(err)) };
      const onAbort = () => waiter.fail(new TransportError(`${this.name}: shard ${task.id} abandoned (${String(signal?.reason?.message ?? signal?.reason)})`, { cause: signal?.reason }));
      signal?.addEventListener('abort', onAbort, { once: true });
      if (!this.waiters.has(key)) this.waiters.set(key, new Set());
      this.waiters.get(key)!.add(waiter);
      this.lookup(task, key).then(
        (stored) => stored && settle('collected', () => resolve(stored)),
        (err: Error) => waiter.fail(err instanceof NeuromfaError ? err : new TransportError(`${this.name}: shard ${task.id}: ${err.message}`, { cause: err })),
      );
    });
  }

  /** The stored answer, or undefined once the shard is on the queue. */
  private async lookup(task: ShardTask, key: string): Promise<ShardReply | undefined> {
    const stored = await this.read(key);
    if (stored && (stored.ok || !stored.error.retryable)) return stored;
    let msgID = key;
    if (stored) {
      // The workers gave up on it (a retryable error on its last delivery): queue it anew, under
      // an id the duplicate window has not seen; any coordinator retrying this failure picks the same.
      const e = await this.q.results.get(key);
      msgID = `${key}.r${e?.revision ?? 0}`;
      await deleteLarge(this.q.results, key);
    }
    await this.publish(task, key, msgID);
    return undefined;
  }

  private async publish(task: ShardTask, key: string, msgID: string): Promise<void> {
    const bytes = encodeTask(task);
    const limit = valueLimit(this.nc);
    const h = headers();
    h.set(JS_HEADERS.key, key);
    h.set(JS_HEADERS.deadline, String(Date.now() + this.deadlineMs));
    let data = bytes;
    if (bytes.length > limit) {
      // Over max_payload: the message only points at the payloads bucket.
      await withRetry(() => putLarge(this.q.payloads, key, bytes, limit), { alive: this.alive });
      h.set(JS_HEADERS.chunks, String(bytes.length));
      data = new Uint8Array(0);
    }
    const ack = await withRetry(() => this.q.js.publish(this.q.jobs, data, { msgID, headers: h }), { alive: this.alive });
    if (!ack.duplicate) this.published++;
    this.o.onEvent?.({ type: 'published', id: task.id, key });
  }

  private async read(key: string): Promise<ShardReply | undefined> {
    const bytes = await withRetry(() => getLarge(this.q.results, key), { alive: this.alive, tries: 20 });
    return bytes ? decodeReply(bytes) : undefined;
  }

  /**
   * The watch of the results bucket. A new one replaces it after every reconnect (the old one's
   * consumer may be gone with the server, and would be recreated only after missed heartbeats)
   * and whenever it ends; each new one is followed by a sweep, so nothing stored in between
   * is missed.
   */
  private async watch(): Promise<void> {
    const generation = ++this.watches;
    this.watcher?.stop();
    const it = await withRetry(() => this.q.results.watch({ include: KvWatchInclude.UpdatesOnly, headers_only: true, ignoreDeletes: true }), { alive: this.alive });
    if (generation !== this.watches) return it.stop();
    this.watcher = it;
    void (async () => {
      for await (const e of it) if (this.waiters.has(e.key)) this.check(e.key);
    })()
      .catch(() => undefined)
      .finally(() => generation === this.watches && this.alive() && setTimeout(() => this.rewatch(), 500));
  }

  private rewatch(): void {
    this.watch().then(
      () => this.sweep(),
      () => this.alive() && setTimeout(() => this.rewatch(), 1000),
    );
  }

  /** Hands the stored answer to the key's waiters; a read that failed (server still away) is tried again. */
  private check(key: string): void {
    this.read(key).then(
      (r) => r && [...(this.waiters.get(key) ?? [])].forEach((w) => w.reply(r)),
      () => this.alive() && this.waiters.has(key) && setTimeout(() => this.check(key), 1000),
    );
  }

  /** Reads every waiting key again (after a reconnect or a restarted watch). */
  private sweep(): void {
    for (const key of this.waiters.keys()) this.check(key);
  }

  /** Adds a key to the run manifest, saved at most every 200 ms: `status RUN` reads it. */
  private record(key: string): void {
    if (this.known.has(key)) return;
    this.known.add(key);
    this.manifest.keys.push(key);
    this.saveTimer ??= setTimeout(() => {
      this.saveTimer = undefined;
      this.save();
    }, 200);
  }

  private save(): Promise<void> {
    const m = { ...this.manifest, keys: [...this.manifest.keys] };
    // A manifest write that fails only costs `status` the newest keys; the next one has them all.
    this.saving = this.saving.then(() => withRetry(() => putRun(this.q.runs, m, valueLimit(this.nc)), { alive: () => !this.nc.isClosed(), tries: 10 })).catch(() => undefined);
    return this.saving;
  }

  /**
   * Workers answering describe now (worker/backends/nats-describe.ts); the coordinator cuts a
   * lone checkpoint into this many sampled shards. Kept as `workers`.
   */
  async countWorkers(waitMs?: number): Promise<number> {
    this.workers = (await describeWorkers(this.nc, this.o.subject ?? DEFAULT_SUBJECT, waitMs)).length;
    return this.workers;
  }

  /** The deployment's shared cache bucket as text: what one coordinator stores, every later run finds. */
  sharedCache(): TextCache {
    const kv = this.q.cache;
    return {
      get: async (key) => (await kv.get(key))?.string() || undefined,
      put: async (key, text) => void (await kv.put(key, text)),
    };
  }

  /** Saves the manifest, stops the watch, fails the shards still waiting, drains its connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.saveTimer);
    if (this.saveTimer) this.save();
    await this.saving;
    this.closed = true;
    this.watches++;
    this.watcher?.stop();
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w.fail(new TransportError(`${this.name}: closed with the shard still queued`));
    await drainOrClose(this.nc);
  }

  /** A run's manifest (its command line, directory and shard keys), read without joining the run. */
  static async manifest(o: NatsConnectOptions & { runId: string }): Promise<RunManifest> {
    const nc = await natsConnect(o);
    try {
      // First, for its typed error on a server without JetStream.
      await jetStreamManager(nc);
      return await readManifest(nc, o.runId);
    } finally {
      await nc.close();
    }
  }

  /** A run's progress, read from the manifest, the results bucket and the consumer; joins nothing, changes nothing. */
  static async status(o: NatsConnectOptions & { runId: string; subject?: string }): Promise<JetStreamRunStatus> {
    const nc = await natsConnect(o);
    try {
      const jsm = await jetStreamManager(nc);
      const manifest = await readManifest(nc, o.runId);
      const results = await nc.jetstream().views.kv(RESULTS_BUCKET, { bindOnly: true });
      const answers = { done: 0, failed: 0 };
      await inLanes(manifest.keys.length, 16, async (k) => {
        const e = await results.get(manifest.keys[k]);
        // A split value is a result: error replies are one line, far below max_payload.
        if (e?.operation === 'PUT') answers[isSplitHead(e.value) || decodeReply(e.value).ok ? 'done' : 'failed']++;
      });
      const ci = await jsm.consumers.info(streamName(o.subject), DURABLE);
      return { manifest, total: manifest.keys.length, ...answers, pending: ci.num_pending + ci.num_ack_pending, redelivered: ci.num_redelivered };
    } finally {
      await nc.close();
    }
  }
}

async function readManifest(nc: NatsConnection, runId: string): Promise<RunManifest> {
  const runs = nc.jetstream().views.kv(RUNS_BUCKET, { bindOnly: true });
  const manifest = await runs.then((kv) => getRun(kv, runId)).catch((err: unknown) => (isStreamNotFound(err) ? null : Promise.reject(err)));
  if (!manifest) throw new UsageError(`run ${runId}: no such run on NATS ${nc.getServer()} (bucket ${RUNS_BUCKET})`);
  return manifest;
}
