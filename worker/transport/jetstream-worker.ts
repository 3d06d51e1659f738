/**
 * The worker's JetStream transport: pulls shards from the durable work-queue consumer (see
 * proto/jetstream.ts), runs them on ShardService and stores each reply in the results bucket
 * before acking. The server owns every shard's fate: a worker that dies mid-shard (SIGKILL,
 * lost node) stops extending the ack deadline, and the server hands the shard to another
 * worker after ack_wait — no coordinator timer is involved.
 *
 * Pulls ask for exactly the threads that are free, so a shard never waits in this worker's
 * buffer while its ack_wait runs down; a pull the library re-issues after a reconnect can
 * still deliver one too many, which is nak'ed back at once.
 */
import { millis, type ConsumerConfig, type ConsumerMessages, type JsMsg, type Msg, type NatsConnection } from 'nats';
import { decodeTask, encodeReply } from '../../proto/codec.js';
import { MessageFormatError, toWireError, TransportError } from '../../proto/errors.js';
import { deleteLarge, DURABLE, ensureQueue, getLarge, JS_HEADERS, PAYLOADS_BUCKET, putLarge, valueLimit, withRetry } from '../../proto/jetstream.js';
import { DEFAULT_SUBJECT } from '../../proto/nats-chunks.js';
import type { ShardReply } from '../../proto/shard.js';
import type { ShardService } from '../serve.js';

export interface JetStreamWorkerOptions {
  /** The deployment's subject; shards come from `<subject>.jobs`. @default 'neuromfa.shards' */
  subject?: string;
  /** Largest task accepted, bytes. */
  maxMessageBytes: number;
  /** `working()` this often while a shard runs. @default the consumer's ack_wait / 3 */
  heartbeatMs?: number;
}

export interface JetStreamTransport {
  /**
   * Stops pulling, finishes the shards in flight (replies stored, acked); the caller drains nc.
   * A shard the server was handing over at that instant is redelivered after ack_wait.
   */
  shutdown(): Promise<void>;
}

/** How long one pull waits for shards; shutdown closes it early. */
const PULL_MS = 5000;

function policyOf(config: ConsumerConfig): { ackWaitMs: number; maxDeliver: number } {
  // max_deliver -1 (or 0): unlimited, so no delivery is the last.
  return { ackWaitMs: Math.max(300, millis(config.ack_wait ?? 30e9)), maxDeliver: config.max_deliver && config.max_deliver > 0 ? config.max_deliver : Infinity };
}

export async function startJetStreamWorker(service: ShardService, nc: NatsConnection, o: JetStreamWorkerOptions): Promise<JetStreamTransport> {
  const q = await ensureQueue(nc, { subject: o.subject ?? DEFAULT_SUBJECT });
  const consumer = await q.js.consumers.get(q.stream, DURABLE);
  let policy = policyOf((await consumer.info(true)).config);
  // Read again every few seconds, before a pull: a coordinator may have changed it since (ensureQueue).
  let policyAt = Date.now();
  const refresh = async (now = false) => {
    if (!now && Date.now() - policyAt < 5000) return;
    policyAt = Date.now();
    // Unreadable now (server restarting): the last one read stands.
    const info = await consumer.info().catch(() => undefined);
    if (info) policy = policyOf(info.config);
  };
  const log = service.log;
  const alive = () => !nc.isClosed();
  /** Acks, naks and heartbeats on a closed connection throw; a lost ack only means a redelivery. */
  const safely = (what: string, f: () => void) => {
    try {
      f();
    } catch (err) {
      log.warn(`jetstream ${what} failed`, { error: (err as Error).message });
    }
  };

  let stopping = false;
  let inFlight = 0;
  const running = new Set<Promise<void>>();
  let wake = () => {};
  let pull: ConsumerMessages | undefined;

  const store = (key: string, reply: Uint8Array) => withRetry(() => putLarge(q.results, key, reply, valueLimit(nc)), { alive });

  /** One delivery: skipped when already answered, else run, stored, then acked (or nak'ed to retry). */
  const handle = async (m: JsMsg) => {
    const key = m.headers?.get(JS_HEADERS.key);
    if (!key) {
      // Nowhere to store an answer: dropped for good, and logged.
      service.refuse(new MessageFormatError(`message ${m.seq} on ${m.subject} has no ${JS_HEADERS.key} header`), 'jetstream');
      return safely('term', () => m.term());
    }
    let beat: NodeJS.Timeout | undefined;
    try {
      // A redelivered shard that another worker (or an earlier delivery) answered: computed once.
      if ((await withRetry(() => q.results.get(key), { alive, tries: 10 }))?.operation === 'PUT') return safely('ack', () => m.ack());
      const inBucket = m.headers!.has(JS_HEADERS.chunks);
      let reply: ShardReply | Uint8Array;
      try {
        const bytes = inBucket ? await withRetry(() => getLarge(q.payloads, key, o.maxMessageBytes), { alive, tries: 10 }) : m.data;
        if (!bytes) throw new MessageFormatError(`shard ${key}: its payload is not in the ${PAYLOADS_BUCKET} bucket`);
        if (bytes.length > o.maxMessageBytes) throw new MessageFormatError(`message of ${bytes.length} bytes is over the ${o.maxMessageBytes}-byte limit`);
        const task = decodeTask(bytes);
        const deadline = Number(m.headers!.get(JS_HEADERS.deadline)) || Infinity;
        // The ack wait now, not as this worker last read it: the coordinator that queued this
        // shard may have just shortened it (--ack-wait), and a heartbeat slower than the server's
        // wait would hand a live worker's shard to another.
        await refresh(true);
        // Extends the ack deadline only until the coordinator's deadline: a hung shard is then redelivered.
        beat = setInterval(() => (Date.now() < deadline ? safely('working', () => m.working()) : clearInterval(beat)), o.heartbeatMs ?? policy.ackWaitMs / 3);
        reply = await service.handle(task, { transport: 'jetstream' });
      } catch (err) {
        if (!(err instanceof MessageFormatError)) throw err;
        reply = service.refuse(err, 'jetstream');
      }
      if (!(reply instanceof Uint8Array) && !reply.ok && reply.error.retryable && m.info.deliveryCount < policy.maxDeliver) {
        return safely('nak', () => m.nak(Math.min(30_000, 1000 * 2 ** (m.info.deliveryCount - 1))));
      }
      await store(key, reply instanceof Uint8Array ? reply : encodeReply(reply));
      // A retryable failure on its last delivery is stored as the answer and ended (term), not acked.
      if (!(reply instanceof Uint8Array) && !reply.ok && reply.error.retryable) safely('term', () => m.term());
      else safely('ack', () => m.ack());
      if (inBucket) await deleteLarge(q.payloads, key).catch((err: Error) => log.warn('jetstream payload delete failed', { key, error: err.message }));
    } catch (err) {
      // The bucket is unreachable (server gone for long, connection closed): not acked, so the
      // server redelivers the shard after ack_wait.
      log.warn('jetstream shard not stored', { key, error: (err as Error).message });
    } finally {
      clearInterval(beat);
    }
  };

  const start = (m: JsMsg) => {
    inFlight++;
    const done: Promise<void> = handle(m).finally(() => {
      inFlight--;
      running.delete(done);
      wake();
    });
    running.add(done);
  };

  const idle = (ms?: number) =>
    new Promise<void>((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => resolve(), ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  /**
   * A shard delivered max_deliver times without an answer (its workers died or hung on it each
   * time) is stuck: the server delivers it no more, and a re-publish under its id would be
   * dropped as a duplicate. One worker of the group stores a retryable failure for it — the
   * coordinator's run fails with that line, and the same command again queues it anew under a
   * fresh id (JetStreamBackend.lookup) — and removes the message from the queue.
   */
  const stuck = async (m: Msg) => {
    const { stream_seq: seq, deliveries } = JSON.parse(new TextDecoder().decode(m.data)) as { stream_seq: number; deliveries: number };
    const held = await q.jsm.streams.getMessage(q.stream, { seq });
    const key = held.header?.get(JS_HEADERS.key);
    if (!key) return;
    if ((await q.results.get(key))?.operation !== 'PUT') {
      const error = toWireError(new TransportError(`shard ${key} was delivered ${deliveries} time${deliveries === 1 ? '' : 's'} and never answered (its workers died or hung on it); run the same command again to queue it anew`));
      await store(key, encodeReply({ ok: false, error }));
    }
    await q.jsm.streams.deleteMessage(q.stream, seq);
  };
  const advisories = nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${q.stream}.${DURABLE}`, {
    queue: 'neuromfa-stuck-shards',
    callback: (err, m) => void (err ? undefined : stuck(m).catch((e: Error) => log.warn('jetstream stuck shard not settled', { error: e.message }))),
  });

  await service.whenReady();
  const loop = (async () => {
    while (!stopping && alive()) {
      const free = service.threads - inFlight;
      if (free <= 0) {
        await idle();
        continue;
      }
      try {
        await refresh();
        const batch = await consumer.fetch({ max_messages: free, expires: PULL_MS });
        pull = batch;
        if (stopping) void batch.close();
        for await (const m of batch) {
          if (inFlight >= service.threads) safely('nak', () => m.nak());
          else start(m);
        }
      } catch (err) {
        // A pull that fails (server restarting, JetStream recovering): wait a little, pull again.
        if (stopping || !alive()) break;
        log.warn('jetstream pull failed', { error: (err as Error).message });
        await idle(500);
      } finally {
        pull = undefined;
      }
    }
  })();

  return {
    async shutdown() {
      stopping = true;
      advisories.unsubscribe();
      wake();
      await pull?.close();
      await loop;
      while (running.size) await Promise.allSettled([...running]);
    },
  };
}
