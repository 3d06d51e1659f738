import type { MfaShardResult } from '../../proto/shard.js';

export interface MergedSums {
  selected: number;
  /** The global radius grid as buckets, ascending. */
  present: Int32Array;
  /** present.length rows × Q: Z_q at each radius. */
  sums: Float64Array;
}

/**
 * The reduce step of SPEC §5. A shard's S is constant between its own present buckets, so at
 * a global bucket g it is the row of its largest present bucket <= g (row 0 below them all).
 * Shards are added in the order given, so a fixed shard layout gives bit-identical sums.
 */
export function mergePartials(results: readonly MfaShardResult[], Q: number): MergedSums {
  let selected = 0;
  const marks = new Set<number>();
  for (const r of results) {
    selected += r.selected;
    for (const b of r.present) marks.add(b);
  }
  const present = Int32Array.from(marks).sort();
  return { selected, present, sums: sumsOnGrid(results, present, Q) };
}

/** The shards' S added at each bucket of `present` (a grid holding every bucket they hit), in the order given. */
export function sumsOnGrid(results: readonly MfaShardResult[], present: Int32Array, Q: number): Float64Array {
  const sums = new Float64Array(present.length * Q);
  for (const r of results) {
    if (r.selected === 0) continue;
    let row = 0;
    for (let g = 0; g < present.length; g++) {
      while (row < r.present.length && r.present[row] <= present[g]) row++;
      const from = row * Q;
      const to = g * Q;
      for (let k = 0; k < Q; k++) sums[to + k] += r.sums[from + k];
    }
  }
  return sums;
}
