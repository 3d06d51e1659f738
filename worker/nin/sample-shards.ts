import type { MfaParams, ShardTask } from '../../proto/shard.js';
import { blockShardRanges, rangeBlocks } from '../plan/block-ranges.js';
import type { EdgeGroups } from '../plan/edge-groups.js';
import { groupRanges, groupTasks } from '../plan/shard-plan.js';
import type { Layout } from './layouts.js';
import type { SamplePlan } from './sample-plan.js';
import { sampledGroups } from './sampled-edges.js';
import type { ReadCells } from './sampled-read.js';

export interface SampleShardOptions {
  params: MfaParams;
  shardsPerSample: number;
  perLayer: boolean;
}

export interface SampleShards {
  groups: EdgeGroups;
  ranges: Array<[number, number]>;
  tasks: ShardTask[];
  /** With perLayer: the block of each task's nodes. */
  blocks?: number[];
}

/** Ids a sample's shards take: every cut at a block boundary adds at most one shard. */
const idStride = (layout: Layout, o: SampleShardOptions) => o.shardsPerSample + (o.perLayer ? layout.blocks.length : 0);

/**
 * A sample's NIN cut into node-range shards. The embedded run and a worker's sampled shard
 * both cut here, so their partials — and the sums merged from them — are the same bit for bit.
 */
function sampleShards(layout: Layout, plan: SamplePlan, cells: ReadCells, o: SampleShardOptions, firstId: number): SampleShards {
  const groups = sampledGroups(layout, plan, cells);
  const ranges = o.perLayer ? blockShardRanges(groups, o.shardsPerSample, layout) : groupRanges(groups, o.shardsPerSample);
  const tasks = groupTasks(groups, ranges, 'mfa', o.params, firstId);
  return { groups, ranges, tasks, ...(o.perLayer ? { blocks: rangeBlocks(groups, ranges, layout) } : {}) };
}

/**
 * Each sample cut in turn and its shards handed to `run` at once, so the pool computes
 * sample k while sample k+1 is built. The embedded run and a worker's sampled shard both go
 * through here; results come back in sample order.
 */
export async function runSampleShards<T>(layout: Layout, plans: readonly SamplePlan[], cells: ReadCells, o: SampleShardOptions, run: (shards: SampleShards, plan: SamplePlan) => Promise<T>): Promise<T[]> {
  const running: Array<Promise<T>> = [];
  for (const [k, plan] of plans.entries()) {
    const done = run(sampleShards(layout, plan, cells, o, k * idStride(layout, o)), plan);
    // Awaited below; a failure must not surface as unhandled while later samples are built.
    done.catch(() => undefined);
    running.push(done);
    // Lets the pool take this sample's shards before the next one is built.
    await new Promise((r) => setImmediate(r));
  }
  return Promise.all(running);
}
