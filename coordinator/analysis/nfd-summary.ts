import { percentile } from './stats.js';

/** A distribution of node fractal dimensions: how many nodes, how many 0, and the spread of the rest. */
export interface NfdSummary {
  nodes: number;
  /** Nodes with NFD 0: fewer than 11 distances within the threshold, or one distinct distance (SPEC §3). */
  zeros: number;
  /** Over the other (defined) nodes; null when there are none. */
  mean: number | null;
  /** Population std (ddof 0). */
  std: number | null;
  min: number | null;
  q25: number | null;
  median: number | null;
  q75: number | null;
  max: number | null;
}

/** The defined (non-zero) values of some NFD tables, ascending. */
export function definedValues(tables: ReadonlyArray<{ nfd: Float64Array }>): Float64Array {
  let n = 0;
  for (const t of tables) for (const v of t.nfd) if (v !== 0) n++;
  const out = new Float64Array(n);
  let k = 0;
  for (const t of tables) for (const v of t.nfd) if (v !== 0) out[k++] = v;
  return out.sort();
}

/** The summary of `nodes` nodes whose defined values are `sorted` (ascending). */
export function summarizeNfd(sorted: Float64Array, nodes: number): NfdSummary {
  const v = Array.from(sorted);
  if (v.length === 0) return { nodes, zeros: nodes, mean: null, std: null, min: null, q25: null, median: null, q75: null, max: null };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  return { nodes, zeros: nodes - v.length, mean, std, min: v[0], q25: percentile(v, 0.25), median: percentile(v, 0.5), q75: percentile(v, 0.75), max: v[v.length - 1] };
}

/** Equal-width bins of [lo, hi] (one bin when lo = hi); hi counts in the last bin, values a rounding outside in the nearest. */
export function binIndex(v: number, lo: number, hi: number, bins: number): number {
  return hi > lo ? Math.max(0, Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins))) : 0;
}
