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
  /** A cache every coordinator of this deployment shares (the JetStream cache bucket), when there is one. */
  sharedCache?(): TextCache | undefined;
  run(task: ShardTask, options?: { signal?: AbortSignal }): Promise<ShardResult>;
  close(): Promise<void>;
}

/** Small text values by key: the hub result cache, when it lives in the deployment (JetStream KV). */
export interface TextCache {
  get(key: string): Promise<string | undefined>;
  put(key: string, text: string): Promise<void>;
}
