import type { ShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';

/** What a run reports as it goes; the progress bar and --json summaries read these. */
export type RunEvent =
  | { type: 'planned'; shards: number; edges: number }
  | { type: 'shard-started'; id: number }
  | { type: 'shard-done'; id: number; result: ShardResult };

export type RunListener = (event: RunEvent) => void;

/** Runs every task on the backend; results come back in task order whatever the finish order. */
export async function runShards(tasks: readonly ShardTask[], backend: ShardBackend, listener?: RunListener): Promise<ShardResult[]> {
  const results = new Array<ShardResult>(tasks.length);
  let next = 0;
  const lane = async () => {
    while (next < tasks.length) {
      const at = next++;
      const task = tasks[at];
      listener?.({ type: 'shard-started', id: task.id });
      const result = await backend.run(task);
      results[at] = result;
      listener?.({ type: 'shard-done', id: task.id, result });
    }
  };
  // Feed a little more than the backend's width so threads never wait on the coordinator.
  const lanes = Math.max(1, Math.min(tasks.length, backend.concurrency * 2));
  await Promise.all(Array.from({ length: lanes }, lane));
  return results;
}
