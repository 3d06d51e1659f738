/**
 * The worker's NATS transport: adapts a NATS connection to ShardService with the exchange
 * of proto/nats-chunks.ts. Workers join one queue group on the deployment's subject, so a
 * new worker adds capacity with no configuration.
 *
 * Each free thread is one queue subscription that takes a single message (`max: 1`, which
 * the server enforces), renewed when the thread frees up. The server picks a random
 * subscription of the group, so shards go to workers in proportion to their idle threads
 * and a busy worker is never handed a shard that another, idle one could start — random
 * spreading over always-subscribed workers would queue two shards on one worker half the
 * time with two workers.
 */
import { createInbox, headers, type Msg, type NatsConnection, type Subscription } from 'nats';
import { decodeTask, encodeDescription, encodeReply } from '../../proto/codec.js';
import { MessageFormatError, TransportError } from '../../proto/errors.js';
import { chunkBytes, DEFAULT_SUBJECT, describeSubject, HEADERS, headerInt, QUEUE_GROUP, Reassembly, splitChunks, type ExchangeKind } from '../../proto/nats-chunks.js';
import type { ShardService } from '../serve.js';


export interface NatsWorkerOptions {
  /** The deployment's subject. @default 'neuromfa.shards' */
  subject?: string;
  /** Largest reassembled message accepted, bytes. */
  maxMessageBytes: number;
  /** A `working` message to the client this often while a shard runs. @default 1000 */
  heartbeatMs?: number;
  /** An upload with no next chunk for this long is abandoned, freeing its thread. @default 10_000 */
  uploadIdleMs?: number;
  /** Transports this worker serves, for describe. @default ['nats'] */
  transports?: string[];
}

export interface NatsTransport {
  /** Stops taking shards, finishes the ones in flight (replies included), then drains the connection. */
  shutdown(): Promise<void>;
}

const MAX_CHUNKS = 1 << 20;


export async function startNatsWorker(service: ShardService, nc: NatsConnection, o: NatsWorkerOptions): Promise<NatsTransport> {
  const subject = o.subject ?? DEFAULT_SUBJECT;
  const heartbeatMs = o.heartbeatMs ?? 1000;
  const uploadIdleMs = o.uploadIdleMs ?? 10_000;
  /** Uploads in progress, by the function that abandons them. */
  const uploads = new Set<(err: Error) => void>();
  const slots = new Set<Subscription>();
  let taken = 0;
  let stopping = false;
  const exchanges = new Set<Promise<void>>();

  /** Publishes, or logs why it could not: a closed connection must not crash the worker. */
  const send = (to: string, kind: ExchangeKind, data: Uint8Array = new Uint8Array(0), extra: Record<string, string> = {}) => {
    const h = headers();
    h.set(HEADERS.kind, kind);
    for (const [k, v] of Object.entries(extra)) h.set(k, v);
    try {
      nc.publish(to, data, { headers: h });
    } catch (err) {
      service.log.warn('nats publish failed', { kind, error: (err as Error).message });
    }
  };

  const sendReply = (to: string, bytes: Uint8Array) => {
    const pieces = splitChunks(bytes, chunkBytes(nc.info?.max_payload ?? 1 << 20));
    pieces.forEach((piece, j) => send(to, 'reply', piece, { [HEADERS.chunk]: String(j), [HEADERS.chunks]: String(pieces.length), [HEADERS.bytes]: String(bytes.length) }));
  };

  /** One subscription per idle thread, each taking one message. */
  const offer = () => {
    while (!stopping && slots.size + taken < service.threads) {
      const sub: Subscription = nc.subscribe(subject, {
        queue: QUEUE_GROUP,
        max: 1,
        callback: (err, m) => {
          slots.delete(sub);
          if (err) return;
          taken++;
          const done = exchange(m).finally(() => exchanges.delete(done));
          exchanges.add(done);
        },
      });
      slots.add(sub);
    }
  };

  const release = () => {
    taken--;
    offer();
  };

  /** The rest of a chunked task: one `continue` per chunk, into this worker's own inbox. */
  const upload = (r: Reassembly, replyTo: string) =>
    new Promise<Uint8Array>((resolve, reject) => {
      const inbox = createInbox();
      let timer: NodeJS.Timeout | undefined;
      const finish = (err?: Error) => {
        clearTimeout(timer);
        uploads.delete(finish);
        sub.unsubscribe();
        if (err) reject(err);
        else resolve(r.message());
      };
      uploads.add(finish);
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => finish(new TransportError(`upload to ${inbox} stalled: no chunk for ${uploadIdleMs} ms`)), uploadIdleMs);
      };
      const sub = nc.subscribe(inbox, {
        callback: (err, m) => {
          if (err) return finish(err);
          try {
            r.add(headerInt(m.headers?.get(HEADERS.chunk), HEADERS.chunk, 0, MAX_CHUNKS), m.data);
          } catch (e) {
            return finish(e as Error);
          }
          if (r.done) return finish();
          arm();
          send(replyTo, 'continue', undefined, { [HEADERS.upload]: inbox });
        },
      });
      arm();
      send(replyTo, 'continue', undefined, { [HEADERS.upload]: inbox });
    });

  /** Reads the whole task (chunk 0 is `m`), runs it with heartbeats, frees the slot, replies. */
  const exchange = async (m: Msg) => {
    const replyTo = m.reply;
    let released = false;
    const free = () => {
      if (released) return;
      released = true;
      release();
    };
    let beat: NodeJS.Timeout | undefined;
    try {
      if (!replyTo) throw new MessageFormatError('shard message without a reply subject');
      let bytes: Uint8Array;
      const kind = m.headers?.get(HEADERS.kind);
      if (!kind) {
        if (m.data.length > o.maxMessageBytes) throw new MessageFormatError(`message of ${m.data.length} bytes is over the ${o.maxMessageBytes}-byte limit`);
        bytes = m.data;
      } else {
        if (kind !== 'task') throw new MessageFormatError(`expected a task message, got ${JSON.stringify(kind)}`);
        headerInt(m.headers!.get(HEADERS.chunk), HEADERS.chunk, 0, 0);
        const r = new Reassembly(
          headerInt(m.headers!.get(HEADERS.chunks), HEADERS.chunks, 1, MAX_CHUNKS),
          headerInt(m.headers!.get(HEADERS.bytes), HEADERS.bytes, 0, Number.MAX_SAFE_INTEGER),
          o.maxMessageBytes,
        );
        r.add(0, m.data);
        bytes = r.done ? r.message() : await upload(r, replyTo);
      }
      // Decoded before the first heartbeat, so a malformed task's first answer is its refusal.
      const task = decodeTask(bytes);
      send(replyTo, 'working');
      beat = setInterval(() => send(replyTo, 'working'), heartbeatMs);
      const reply = encodeReply(await service.handle(task, { transport: 'nats' }));
      clearInterval(beat);
      // Free the thread before replying: the coordinator sends its next shard on the reply,
      // and it should find this thread subscribed again.
      free();
      sendReply(replyTo, reply);
      await flushed();
    } catch (err) {
      clearInterval(beat);
      free();
      const refusal = service.refuse(err, 'nats');
      if (replyTo) sendReply(replyTo, refusal);
      await flushed();
    }
  };

  /**
   * Waits until the server has every byte published so far: an exchange ends once its reply is
   * with the server, not in our buffer, so shutdown — which waits for the exchanges — never
   * closes over a reply still being written.
   */
  const flushed = () => nc.flush().catch((err: Error) => service.log.warn('nats flush failed', { error: err.message }));

  const describeSub = nc.subscribe(describeSubject(subject), {
    callback: (_err, m) => {
      if (m.reply && !nc.isClosed()) m.respond(encodeDescription(service.describe(o.transports ?? ['nats'])));
    },
  });

  // A chunk or a `continue` sent around a reconnect may be lost, and the upload would then
  // hold its thread until the idle timeout; the client gives up on it and sends the shard
  // again, so abandon every upload in progress at once.
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'reconnect') for (const abandon of [...uploads]) abandon(new TransportError('NATS reconnected mid-upload'));
    }
  })();

  await service.whenReady();
  offer();
  await nc.flush();

  return {
    async shutdown() {
      stopping = true;
      // drain, not unsubscribe: a message the server routed here before the UNSUB is still
      // delivered, and handled, instead of lost.
      await Promise.all([...slots].map((s) => s.drain()));
      await describeSub.drain();
      while (exchanges.size) await Promise.allSettled([...exchanges]);
      if (!nc.isClosed()) await nc.drain();
    },
  };
}
