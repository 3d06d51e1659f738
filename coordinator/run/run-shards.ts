import { TransportError } from '../../proto/errors.js';
import type { ShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import type { ClusterEvent } from '../dispatch/cluster-backend.js';
import type { RunJournal } from './journal.js';

/** What a run reports as it goes; the progress bar and --json summaries read these. */
export type RunEvent =
  /** Sampled analyses: the rows of `tensors` of `of` tensors are read, `bytes` of them. */
  | { type: 'read'; tensors: number; of: number; bytes: number }
  /**
   * Shards planned; a series fanned out over workers plans every checkpoint's at once, by shard
   * id. `adds`: more of the same checkpoint's plan (a sampled analysis plans sample by sample).
   */
  | { type: 'planned'; shards: number; edges: number; adds?: boolean; checkpoints?: Array<{ label: string; shards: number[] }> }
  /** A series (emergence) starts reading checkpoint `index` of the `of` it analyses. */
  | { type: 'checkpoint'; label: string; index: number; of: number }
  | { type: 'shard-started'; id: number }
  | { type: 'shard-done'; id: number; result: ShardResult; resumed: boolean }
  | ClusterEvent;

export type RunListener = (event: RunEvent) => void;

/**
 * Runs every task on the backend; results come back in task order whatever the finish order.
 * With a journal, shards it already holds are not run again and each new result is stored
 * before it counts as done.
 */
export async function runShards(tasks: readonly ShardTask[], backend: ShardBackend, listener?: RunListener, journal?: RunJournal): Promise<ShardResult[]> {
  const results = new Array<ShardResult>(tasks.length);
  tasks.forEach((task, at) => {
    const kept = journal?.get(task.id);
    if (kept) {
      results[at] = kept;
      listener?.({ type: 'shard-done', id: task.id, result: kept, resumed: true });
    }
  });
  let next = 0;
  let failure: { err: unknown } | undefined;
  const lanes: Promise<void>[] = [];
  const lane = async () => {
    while (next < tasks.length) {
      const at = next++;
      if (results[at]) continue;
      const task = tasks[at];
      listener?.({ type: 'shard-started', id: task.id });
      const result = await backend.run(task);
      await journal?.save(result);
      results[at] = result;
      listener?.({ type: 'shard-done', id: task.id, result, resumed: false });
      grow();
    }
  };
  // Feed a little more than the backend's width so threads never wait on the coordinator;
  // the width is read again as shards finish, since a queue's workers come and go.
  // On a failure no new shard starts; those in flight finish (and are journaled) first.
  const grow = () => {
    while (!failure && next < tasks.length && lanes.length < Math.max(1, backend.concurrency * 2)) {
      lanes.push(
        lane().catch((err) => {
          failure ??= { err };
          next = tasks.length;
        }),
      );
    }
  };
  grow();
  for (let i = 0; i < lanes.length; i++) await lanes[i];
  if (failure) {
    // A transport failure is worth resuming: say what is kept and how.
    if (journal && failure.err instanceof TransportError) {
      throw new TransportError(`${failure.err.message}; ${journal.kept} of ${tasks.length} shards are done and kept: continue with --resume ${journal.outDir}`, { cause: failure.err });
    }
    throw failure.err;
  }
  return results;
}
