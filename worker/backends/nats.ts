/**
 * The workers of a NATS deployment behind the ShardBackend interface. Each run() publishes
 * one shard to the deployment's subject, where the queue group hands it to an idle worker,
 * and follows the exchange of proto/nats-chunks.ts: chunked upload when the task is over the
 * server's max_payload, heartbeats while it runs, a chunked reply.
 *
 * When its own connection drops and comes back, the shards in flight are sent again (the
 * first reply wins, so a shard is never counted twice).
 *
 * Errors: the shard's own errors come back typed; a worker that stops answering (no message
 * for `livenessMs`, e.g. killed mid-shard, or a nats-server restart it did not survive), no
 * worker taking the shard before the deadline, or a reply that does not decode, is a
 * retryable TransportError; a task over maxMessageBytes is a permanent InputError.
 */
import { createInbox, Events, headers, type Msg, type NatsConnection } from 'nats';
import { decodeReply, DEFAULT_MAX_MESSAGE_BYTES, encodeTask } from '../../proto/codec.js';
import { describeWorkers } from './nats-describe.js';
import { fromWireError, InputError, TransportError } from '../../proto/errors.js';
import type { WorkerDescription } from '../../proto/describe.js';
import { chunkBytes, DEFAULT_SUBJECT, HEADERS, headerInt, Reassembly, splitChunks } from '../../proto/nats-chunks.js';
import type { ShardResult, ShardTask } from '../../proto/shard.js';
import { drainOrClose, natsConnect, type NatsConnectOptions } from '../transport/nats-connect.js';
import type { ShardBackend } from './shard-backend.js';

export interface NatsBackendOptions {
  /** The deployment's subject, as the workers' --subject. @default 'neuromfa.shards' */
  subject?: string;
  /** Shards in flight at once. @default 1; NatsBackend.connect sums the threads of the workers that answer describe */
  concurrency?: number;
  /** Longest a shard may take, waiting for an idle worker included, ms. @default 600_000 */
  deadlineMs?: number;
  /** A worker silent this long is taken as lost; keep it >= 3× the workers' heartbeat (1 s). @default 5000 */
  livenessMs?: number;
  /** Largest task sent or reply accepted, bytes. @default 64 MiB */
  maxMessageBytes?: number;
  /**
   * Count the workers on the subject again this often (ms), so workers added mid-run add
   * capacity and the progress shows how many there are. Off when 0. @default 0
   */
  watchMs?: number;
  /** Called with the number of workers whenever a count differs from the last. */
  onWorkers?: (workers: number) => void;
}

export class NatsBackend implements ShardBackend {
  readonly name: string;
  concurrency: number;
  private readonly subject: string;
  private readonly deadlineMs: number;
  private readonly livenessMs: number;
  private readonly maxMessageBytes: number;
  private inFlight = 0;
  private waiting: Array<() => void> = [];
  /** Workers that answered the last describe; unknown (undefined) until one was made. */
  workers?: number;
  private watchTimer?: NodeJS.Timeout;
  private closed = false;
  /** The shards in flight, to hold still while the connection is down and to send again after. */
  private readonly exchanges = new Set<{ pause(): void; resend(): void }>();

  /** Uses `nc` as given; close() leaves it open unless `ownsConnection`. */
  constructor(
    private readonly nc: NatsConnection,
    o: NatsBackendOptions = {},
    private readonly ownsConnection = false,
  ) {
    this.subject = o.subject ?? DEFAULT_SUBJECT;
    this.name = `nats:${this.subject}`;
    this.concurrency = o.concurrency ?? 1;
    this.deadlineMs = o.deadlineMs ?? 600_000;
    this.livenessMs = o.livenessMs ?? 5000;
    this.maxMessageBytes = o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.followConnection();
  }

  /** Connects, and unless `concurrency` is given, sizes it to the threads of the workers there now. */
  static async connect(o: NatsBackendOptions & NatsConnectOptions & { describeWaitMs?: number }): Promise<NatsBackend> {
    const backend = new NatsBackend(await natsConnect(o), o, true);
    try {
      await backend.count(o.concurrency === undefined, o.describeWaitMs);
      if (o.watchMs) backend.watch(o.watchMs, o.concurrency === undefined, o.onWorkers);
      return backend;
    } catch (err) {
      await backend.close();
      throw err;
    }
  }

  /** Counts the workers there now; with `size`, the shards in flight follow their threads. */
  private async count(size: boolean, waitMs?: number): Promise<boolean> {
    const workers = await this.describeAll(waitMs);
    if (size) {
      this.concurrency = Math.max(1, workers.reduce((a, w) => a + w.threads, 0));
      for (const wake of this.waiting.splice(0)) wake();
    }
    const changed = workers.length !== this.workers;
    this.workers = workers.length;
    return changed;
  }

  private watch(everyMs: number, size: boolean, onWorkers?: (workers: number) => void): void {
    const tick = () => {
      this.count(size)
        .then((changed) => changed && onWorkers?.(this.workers!))
        // A count that fails (server restarting) leaves the last one standing.
        .catch(() => undefined)
        .finally(() => {
          if (!this.closed) this.watchTimer = setTimeout(tick, everyMs).unref();
        });
    };
    this.watchTimer = setTimeout(tick, everyMs).unref();
  }

  /** Every worker on the subject that answers (describeWorkers). */
  describeAll(waitMs = 500): Promise<WorkerDescription[]> {
    return describeWorkers(this.nc, this.subject, waitMs);
  }

  /**
   * At most `concurrency` exchanges at once; the others wait here rather than poll the
   * subject while every worker is busy. The deadline starts when the shard is sent.
   */
  async run(task: ShardTask, options: { signal?: AbortSignal } = {}): Promise<ShardResult> {
    while (this.inFlight >= this.concurrency) {
      options.signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        options.signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    options.signal?.throwIfAborted();
    this.inFlight++;
    try {
      return await this.exchange(task, options.signal);
    } finally {
      this.inFlight--;
      // All of them re-check: one may have been woken by its abort already.
      for (const wake of this.waiting.splice(0)) wake();
    }
  }

  /**
   * Its own connection dropped: the workers' messages for the shards in flight are lost until
   * it is back, which is no worker's fault, so their liveness waits; once reconnected every
   * shard in flight is sent again (replies that were on their way when it dropped are gone).
   * A slow-consumer disconnect while a big reply is pushed to a busy coordinator is one way to
   * get here (issue 10: the NATS TLS SIGTERM test).
   */
  private followConnection(): void {
    void (async () => {
      for await (const s of this.nc.status()) {
        if (s.type === Events.Disconnect) for (const x of this.exchanges) x.pause();
        else if (s.type === Events.Reconnect) for (const x of this.exchanges) x.resend();
      }
    })().catch(() => undefined);
  }

  /**
   * One shard: sent, and sent again on every reconnect of our connection. Each sending is an
   * attempt with its own inbox, so two workers' replies never mix; the first complete reply of
   * any attempt settles the shard and closes every inbox, so a duplicate answer is never
   * counted. A reply that breaks off (chunks lost in the drop) spoils only its own attempt
   * while a later one is out.
   */
  private exchange(task: ShardTask, signal: AbortSignal | undefined): Promise<ShardResult> {
    const bytes = encodeTask(task);
    if (bytes.length > this.maxMessageBytes) {
      return Promise.reject(new InputError(`shard ${task.id} is ${mb(bytes.length)} MB encoded, over the ${mb(this.maxMessageBytes)} MB message limit: plan smaller shards (--shard-mb) or raise --max-message-mb`));
    }
    const pieces = splitChunks(bytes, chunkBytes(this.nc.info?.max_payload ?? 1 << 20));
    return new Promise<ShardResult>((resolve, reject) => {
      let settled = false;
      let liveness: NodeJS.Timeout | undefined;
      const attempts = new Set<{ inbox: string; close(): void }>();
      let latest = '';
      const deadline = setTimeout(() => fail(new TransportError(`${this.name}: shard ${task.id} not answered within ${this.deadlineMs} ms`)), this.deadlineMs);
      const onAbort = () => fail(new TransportError(`${this.name}: shard ${task.id} abandoned (${String(signal?.reason?.message ?? signal?.reason)})`, { cause: signal?.reason }));
      signal?.addEventListener('abort', onAbort, { once: true });
      const inFlight = { pause: () => clearTimeout(liveness), resend: () => settled || attempt() };
      this.exchanges.add(inFlight);
      const cleanup = () => {
        settled = true;
        clearTimeout(deadline);
        clearTimeout(liveness);
        signal?.removeEventListener('abort', onAbort);
        this.exchanges.delete(inFlight);
        for (const a of [...attempts]) a.close();
      };
      const fail = (err: Error) => {
        if (settled) return;
        cleanup();
        reject(err);
      };
      const alive = () => {
        clearTimeout(liveness);
        liveness = setTimeout(() => fail(new TransportError(`${this.name}: the worker running shard ${task.id} stopped answering (nothing for ${this.livenessMs} ms)`)), this.livenessMs);
      };
      const attempt = () => {
        const inbox = createInbox();
        latest = inbox;
        let next = 1;
        let noResponders = 0;
        let reply: Reassembly | undefined;
        let retry: NodeJS.Timeout | undefined;
        const self = {
          inbox,
          close: () => {
            clearTimeout(retry);
            attempts.delete(self);
            if (!sub.isClosed()) sub.unsubscribe();
          },
        };
        /** This attempt's fault; the shard's only when no later attempt is out. */
        const spoil = (err: Error) => (inbox === latest ? fail(err) : self.close());
        const sendFirst = () => {
          const h = headers();
          h.set(HEADERS.kind, 'task');
          h.set(HEADERS.chunk, '0');
          h.set(HEADERS.chunks, String(pieces.length));
          h.set(HEADERS.bytes, String(bytes.length));
          this.nc.publish(this.subject, pieces[0], { reply: inbox, headers: h });
          alive();
        };
        const onMessage = (m: Msg) => {
          if (m.headers?.hasError) {
            // 503: no subscription in the queue group now — every worker busy, or none there.
            // Wait and offer it again until the deadline; a thread freeing up resubscribes.
            if (m.headers.code !== 503) return spoil(new TransportError(`${this.name}: shard ${task.id}: NATS status ${m.headers.code} ${m.headers.description}`));
            // No worker took this sending, and a later one is out: it was the one to retry.
            if (inbox !== latest) return self.close();
            clearTimeout(liveness);
            retry = setTimeout(sendFirst, Math.min(250, 10 * 2 ** Math.min(noResponders++, 5)));
            return;
          }
          alive();
          const kind = m.headers?.get(HEADERS.kind);
          if (kind === 'working') return;
          if (kind === 'continue') {
            const upload = m.headers!.get(HEADERS.upload);
            if (!upload || next >= pieces.length) return spoil(new TransportError(`${this.name}: unexpected continue for shard ${task.id}`));
            const h = headers();
            h.set(HEADERS.kind, 'task');
            h.set(HEADERS.chunk, String(next));
            this.nc.publish(upload, pieces[next++], { reply: inbox, headers: h });
            return;
          }
          if (kind !== 'reply') return spoil(new TransportError(`${this.name}: unexpected message ${JSON.stringify(kind)} for shard ${task.id}`));
          try {
            reply ??= new Reassembly(
              headerInt(m.headers!.get(HEADERS.chunks), HEADERS.chunks, 1, 1 << 20),
              headerInt(m.headers!.get(HEADERS.bytes), HEADERS.bytes, 0, Number.MAX_SAFE_INTEGER),
              this.maxMessageBytes,
            );
            reply.add(headerInt(m.headers!.get(HEADERS.chunk), HEADERS.chunk, 0, 1 << 20), m.data);
            if (!reply.done) return;
            const decoded = decodeReply(reply.message());
            if (settled) return;
            cleanup();
            if (decoded.ok) resolve(decoded.result);
            else reject(fromWireError(decoded.error));
          } catch (err) {
            // The worker's fault, not the shard's: retryable, so the shard is redone elsewhere.
            spoil(new TransportError(`${this.name}: malformed reply for shard ${task.id}: ${(err as Error).message}`, { cause: err }));
          }
        };
        const sub = this.nc.subscribe(inbox, { callback: (err, m) => (err ? spoil(new TransportError(err.message, { cause: err })) : onMessage(m)) });
        attempts.add(self);
        sendFirst();
      };
      attempt();
    });
  }

  /** Drains its own connection; a connection that cannot drain (no server now) is closed after 2 s. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.watchTimer);
    if (this.ownsConnection) await drainOrClose(this.nc);
  }
}

const mb = (n: number) => (n / (1 << 20)).toFixed(1);
