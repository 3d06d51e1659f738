import { TransportError } from '../../proto/errors.js';
import type { ShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import { resultProblem } from './result-check.js';
import { delayFor, isRetryable, type BackoffOptions } from './retry-policy.js';

/** What the cluster reports as it goes (merged into the run's event stream). */
export type ClusterEvent =
  | { type: 'retry'; id: number; worker: string; attempt: number; reason: string }
  | { type: 'worker-lost'; worker: string; reason: string; live: number }
  /** The workers behind a queue (NATS) as last counted; they come and go without failures. */
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
  dropped: boolean;
}

/**
 * Many workers behind the one ShardBackend interface: each shard goes to the least busy live
 * worker, with a deadline; a retryable failure is retried with backoff on another worker; a
 * worker that keeps failing or answers with a malformed result is dropped for the run. Each
 * run() settles once, so a late or duplicate answer for a shard is never merged twice.
 */
export class ClusterBackend implements ShardBackend {
  readonly name = 'cluster';
  private readonly slots: Slot[];
  private waiters: Array<() => void> = [];
  private readonly shardDeadlineMs: number;

  constructor(
    workers: ShardBackend[],
    private readonly o: ClusterOptions = {},
  ) {
    this.slots = workers.map((backend) => ({ backend, inFlight: 0, failures: 0, dropped: false }));
    this.shardDeadlineMs = o.shardDeadlineMs ?? 600_000;
  }

  /** Read each time: a queue's width follows the workers it has now. */
  private capacity(slot: Slot): number {
    return this.o.inFlightPerWorker ?? slot.backend.concurrency;
  }

  get concurrency(): number {
    return this.slots.filter((s) => !s.dropped).reduce((a, s) => a + this.capacity(s), 0) || 1;
  }

  /** Live workers: those not dropped, a queue counted by its members. */
  get workers(): number {
    return this.slots.filter((s) => !s.dropped).reduce((a, s) => a + (s.backend.workers ?? 1), 0);
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
      slot.inFlight++;
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
        if (++slot.failures >= (this.o.maxWorkerFailures ?? 3)) this.drop(slot, lastReason);
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
    await Promise.all(this.slots.map((s) => s.backend.close()));
  }

  private drop(slot: Slot, reason: string): void {
    if (slot.dropped) return;
    slot.dropped = true;
    this.o.onEvent?.({ type: 'worker-lost', worker: slot.backend.name, reason, live: this.workers });
    this.wake();
  }

  /** The least busy live worker with room, preferring one other than `avoid`; waits for room. */
  private async acquire(avoid: Slot | undefined, signal?: AbortSignal): Promise<Slot> {
    const waitMs = this.o.noWorkerTimeoutMs ?? this.shardDeadlineMs;
    const deadline = Date.now() + waitMs;
    for (;;) {
      const live = this.slots.filter((s) => !s.dropped);
      if (live.length === 0 && Date.now() >= deadline) {
        throw new TransportError(`every worker is gone (all failed or were dropped) and none came back within ${(waitMs / 1000).toFixed(0)} s`);
      }
      const free = live.filter((s) => s.inFlight < this.capacity(s)).sort((a, b) => a.inFlight / this.capacity(a) - b.inFlight / this.capacity(b));
      const pick = free.find((s) => s !== avoid) ?? free[0];
      if (pick) return pick;
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
