import type { MfaParams, ShardTask } from '../../proto/shard.js';
import { edgesFromRows } from '../io/edge-list.js';
import { blockShardRanges, rangeBlocks } from '../plan/block-ranges.js';
import { groupBySource, type EdgeGroups } from '../plan/edge-groups.js';
import { groupRanges, groupTasks } from '../plan/shard-plan.js';
import type { Layout } from './layouts.js';
import type { SamplePlan } from './sample-plan.js';
import { sampledEdges, type EdgeScratch, type RowLookup } from './sampled-edges.js';

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
export const idStride = (layout: Layout, o: SampleShardOptions) => o.shardsPerSample + (o.perLayer ? layout.blocks.length : 0);

/**
 * A sample's NIN cut into node-range shards. The embedded run and a worker's sampled shard
 * both cut here, so their partials — and the sums merged from them — are the same bit for bit.
 */
export function sampleShards(layout: Layout, plan: SamplePlan, rowOf: RowLookup, o: SampleShardOptions, firstId: number, scratch?: EdgeScratch): SampleShards {
  // groupBySource copies the weights of a plain (not shared) buffer: the scratch is free again after it.
  const groups = groupBySource(edgesFromRows(sampledEdges(layout, plan, rowOf, scratch)));
  const ranges = o.perLayer ? blockShardRanges(groups, o.shardsPerSample, layout) : groupRanges(groups, o.shardsPerSample);
  const tasks = groupTasks(groups, ranges, 'mfa', o.params, firstId);
  return { groups, ranges, tasks, ...(o.perLayer ? { blocks: rangeBlocks(groups, ranges, layout) } : {}) };
}
