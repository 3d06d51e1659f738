import { TransportError } from '../../proto/errors.js';
import type { ShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import { canRejoin, WorkerLostError } from '../../worker/backends/worker-lost.js';
import { resultProblem } from './result-check.js';
import { delayFor, isRetryable, type BackoffOptions } from './retry-policy.js';

/** What the cluster reports as it goes (merged into the run's event stream). */
export type ClusterEvent =
  | { type: 'retry'; id: number; worker: string; attempt: number; reason: string }
  | { type: 'worker-lost'; worker: string; reason: string; live: number }
  /** Live workers now: a queue (NATS) counted again, or a lost worker back in the run. */
  | { type: 'workers'; live: number };

export interface ClusterOptions {
  /** Shards in flight per worker. @default the worker's own concurrency */
  inFlightPerWorker?: number;
  /** Deadline of one shard on one worker. @default 10 minutes */
  shardDeadlineMs?: number;
  /** Attempts of one shard before the run fails. @default 5 */
  maxAttempts?: number;
  /** Consecutive failures after which a worker is dropped for the run. @default 3 */
  maxWorkerFailures?: number;
  /** How long to wait for a worker when every one is gone before failing. @default the shard deadline */
  noWorkerTimeoutMs?: number;
  backoff?: BackoffOptions;
  onEvent?: (e: ClusterEvent) => void;
}

interface Slot {
  backend: ShardBackend;
  inFlight: number;
  failures: number;
  /** Out for the run: it kept failing or answered with a malformed result. */
  dropped: boolean;
  /** Out of reach now (WorkerLostError); back in the run once it answers, if it can say so. */
  lost: boolean;
}

/**
 * Many workers behind the one ShardBackend interface: each shard goes to the least busy live
 * worker, with a deadline; a retryable failure is retried with backoff on another worker; a
 * worker that keeps failing or answers with a malformed result is dropped for the run; a
 * worker out of reach (WorkerLostError: its link died, it refuses connections) is set aside at
 * once and comes back when it answers again. Each run() settles once, so a late or duplicate
 * answer for a shard is never merged twice.
 */
export class ClusterBackend implements ShardBackend {
  readonly name = 'cluster';
  private readonly slots: Slot[];
  private waiters: Array<() => void> = [];
  private readonly shardDeadlineMs: number;
  private closed = false;

  constructor(
    workers: ShardBackend[],
    private readonly o: ClusterOptions = {},
  ) {
    this.slots = workers.map((backend) => ({ backend, inFlight: 0, failures: 0, dropped: false, lost: false }));
    this.shardDeadlineMs = o.shardDeadlineMs ?? 600_000;
  }

  /** Read each time: a queue's width follows the workers it has now. */
  private capacity(slot: Slot): number {
    return this.o.inFlightPerWorker ?? slot.backend.concurrency;
  }

  private live(): Slot[] {
    return this.slots.filter((s) => !s.dropped && !s.lost);
  }

  get concurrency(): number {
    return this.live().reduce((a, s) => a + this.capacity(s), 0) || 1;
  }

  /** Live workers: those neither dropped nor lost, a queue counted by its members. */
  get workers(): number {
    return this.live().reduce((a, s) => a + (s.backend.workers ?? 1), 0);
  }

  /** A worker's capacity grew (a queue gained workers): shards waiting for room look again. */
  capacityChanged(): void {
    this.wake();
  }

  async run(task: ShardTask, options: { signal?: AbortSignal } = {}): Promise<ShardResult> {
    const maxAttempts = this.o.maxAttempts ?? 5;
    let avoid: Slot | undefined;
    let lastReason = '';
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const slot = await this.acquire(avoid, options.signal);
      try {
        const signal = AbortSignal.any([AbortSignal.timeout(this.shardDeadlineMs), ...(options.signal ? [options.signal] : [])]);
        const result = await slot.backend.run(task, { signal });
        const problem = resultProblem(task, result);
        if (problem) {
          this.drop(slot, `malformed result for shard ${task.id}: ${problem}`);
          lastReason = problem;
        } else {
          slot.failures = 0;
          return result;
        }
      } catch (err) {
        if (options.signal?.aborted) throw err;
        if (!isRetryable(err)) throw err;
        lastReason = err instanceof Error ? err.message : String(err);
        if (err instanceof WorkerLostError) this.lose(slot, lastReason);
        else if (++slot.failures >= (this.o.maxWorkerFailures ?? 3)) this.drop(slot, lastReason);
      } finally {
        slot.inFlight--;
        this.wake();
      }
      avoid = slot;
      this.o.onEvent?.({ type: 'retry', id: task.id, worker: slot.backend.name, attempt, reason: lastReason });
      await sleep(delayFor(attempt, this.o.backoff), options.signal);
    }
    throw new TransportError(`shard ${task.id} failed ${maxAttempts} times; last: ${lastReason}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.backend.close()));
  }

  /** Sets a worker aside now (it did not answer when the run started): reported, taken back when it answers. */
  setAside(backend: ShardBackend, reason: string): void {
    const slot = this.slots.find((s) => s.backend === backend);
    if (slot) this.lose(slot, reason);
  }

  private drop(slot: Slot, reason: string): void {
    if (slot.dropped) return;
    slot.dropped = true;
    this.o.onEvent?.({ type: 'worker-lost', worker: slot.backend.name, reason, live: this.workers });
    this.wake();
  }

  /** Reported once however many of its shards fail with it; back with a clean record when it answers. */
  private lose(slot: Slot, reason: string): void {
    if (slot.lost || slot.dropped) return;
    slot.lost = true;
    this.o.onEvent?.({ type: 'worker-lost', worker: slot.backend.name, reason, live: this.workers });
    this.wake();
    if (!canRejoin(slot.backend)) return;
    slot.backend.whenReachable().then(
      () => {
        if (this.closed || slot.dropped) return;
        slot.lost = false;
        slot.failures = 0;
        this.o.onEvent?.({ type: 'workers', live: this.workers });
        this.wake();
      },
      // Closed before it came back: nothing to do.
      () => undefined,
    );
  }

  /**
   * The least busy live worker with room, preferring one other than `avoid`, counted busier
   * before it is returned: a run starts many shards in one tick, and they must spread by load.
   */
  private async acquire(avoid: Slot | undefined, signal?: AbortSignal): Promise<Slot> {
    const waitMs = this.o.noWorkerTimeoutMs ?? this.shardDeadlineMs;
    const deadline = Date.now() + waitMs;
    for (;;) {
      const live = this.live();
      if (live.length === 0 && Date.now() >= deadline) {
        throw new TransportError(`every worker is gone (all failed or were dropped) and none came back within ${(waitMs / 1000).toFixed(0)} s`);
      }
      const free = live.filter((s) => s.inFlight < this.capacity(s)).sort((a, b) => a.inFlight / this.capacity(a) - b.inFlight / this.capacity(b));
      const pick = free.find((s) => s !== avoid) ?? free[0];
      if (pick) {
        pick.inFlight++;
        return pick;
      }
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        // Re-check periodically: with no live worker nothing else will wake us. The timer
        // keeps the process alive while shards wait, and is cleared once woken, so a
        // finished run exits at once.
        const timer = setTimeout(done, live.length === 0 ? 200 : 1000);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.push(done);
      });
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    // Removed when the wait ends: a run's signal sees one retry after another.
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
