import type { Layout } from '../nin/layouts.js';
import { blockNodeRanges } from '../nin/stage-nodes.js';
import type { EdgeGroups } from './edge-groups.js';
import { groupRanges } from './shard-plan.js';

/**
 * Per-layer spectra need shards that never mix two blocks' nodes (coordinator/analysis/per-layer.ts
 * merges each block's own shards): these cut a sampled NIN's node ranges at block boundaries.
 */

/** Node ranges of shards of a sampled NIN: the usual ranges, cut again wherever a block ends. */
export function blockShardRanges(groups: EdgeGroups, count: number, layout: Layout): Array<[number, number]> {
  const ends = blockNodeRanges(layout).map(([, end]) => end);
  const out: Array<[number, number]> = [];
  for (const [a, b] of groupRanges(groups, count)) {
    let start = a;
    for (let i = a + 1; i < b; i++) {
      if (blockOf(groups.nodes[i], ends) !== blockOf(groups.nodes[i - 1], ends)) {
        out.push([start, i]);
        start = i;
      }
    }
    out.push([start, b]);
  }
  return out;
}

/** The block holding node id `node`, given each block's end (exclusive), ascending. */
function blockOf(node: number, ends: readonly number[]): number {
  let b = 0;
  while (b < ends.length - 1 && node >= ends[b]) b++;
  return b;
}

/** The block of each range's nodes (blockShardRanges never mixes two). */
export function rangeBlocks(groups: EdgeGroups, ranges: ReadonlyArray<[number, number]>, layout: Layout): number[] {
  const ends = blockNodeRanges(layout).map(([, end]) => end);
  return ranges.map(([a]) => blockOf(groups.nodes[a], ends));
}

