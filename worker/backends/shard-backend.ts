import type { ShardResult, ShardTask } from '../../proto/shard.js';

/**
 * Where shards run. The coordinator sees only this interface; in-process, thread-pool and
 * (later) remote workers are interchangeable implementations over the same kernel.
 */
export interface ShardBackend {
  readonly name: string;
  /** How many shards it usefully runs at once. */
  readonly concurrency: number;
  /** Workers behind it when that is more than one and known (a NATS queue group). */
  readonly workers?: number;
  run(task: ShardTask, options?: { signal?: AbortSignal }): Promise<ShardResult>;
  close(): Promise<void>;
}
