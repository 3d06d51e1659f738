import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { fromWireError, UsageError } from '../../proto/errors.js';
import type { ShardReply, ShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend } from './shard-backend.js';

/** Shards on a piscina thread pool; the thread body is worker/pool/thread-entry.ts. */
export class PiscinaBackend implements ShardBackend {
  readonly name = 'threads';
  readonly concurrency: number;
  private readonly pool: Piscina;

  constructor(threads: number = availableParallelism()) {
    if (!Number.isInteger(threads) || threads < 1) throw new UsageError(`--threads must be a positive integer, got ${threads}`);
    this.concurrency = threads;
    this.pool = new Piscina({
      filename: new URL('../pool/thread-entry.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      // Shards are CPU-bound: one per thread, the rest wait in piscina's queue.
      concurrentTasksPerWorker: 1,
      idleTimeout: 1000,
    });
  }

  async run(task: ShardTask, options: { signal?: AbortSignal } = {}): Promise<ShardResult> {
    const reply = (await this.pool.run(task, { signal: options.signal })) as ShardReply;
    if (!reply.ok) throw fromWireError(reply.error);
    return reply.result;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
