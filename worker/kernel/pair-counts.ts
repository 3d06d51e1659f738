import type { BoxMass } from './box-mass.js';
import type { Selection } from './partition-sums.js';
import { powerTable } from './power-table.js';

/**
 * Partition sums by counting instead of per hit. At any row, a selected node's term is
 * (n/N)^q for its pair (n, N) = (N_i(b), N_i); nodes sharing a pair share the term. So
 * S at row r = Σ over pairs of cnt_r(n, N) · (n/N)^q, where cnt_r counts the selected nodes
 * at (n, N) on row r. On dense shards (many nodes, small N) far fewer pairs occur per row
 * than there are hits, and every addend is non-negative: no cancellation at all.
 */
export interface PairCounts {
  /** Rows of the sums: P + 1. */
  rows: number;
  /** Occurring N, ascending; pairs (1..N, N) of groups[g] start at column pairStart[g]. */
  groups: Int32Array;
  pairStart: Int32Array;
  /** Columns per row: Σ of the occurring N. */
  pairs: number;
  /** cnt_r(n, N) at counts[pairStart[g] * rows + r * N + n - 1] (a rows × N block per N); a per-thread scratch. */
  counts: Int32Array;
}

/**
 * Largest count matrix (rows × occurring pairs, Int32) and table of powers (pairs × q,
 * float64) worth building: 16 MiB each. Past them (wide bucket grids, large N, long q grids)
 * the per-hit path is used and no more memory is taken.
 */
const MAX_COUNT_CELLS = 1 << 22;
const MAX_TERMS = 1 << 21;
/** Widest range of present buckets mapped to rows through a dense table (4 MiB). */
const MAX_ROW_SPAN = 1 << 20;

/** Per-thread scratch, grown on demand up to MAX_COUNT_CELLS: every shard of a thread reuses it. */
let scratch = new Int32Array(0);

/**
 * Relative costs, in units of one multiply-add per q on the per-hit path (a hit there costs
 * two products and a subtraction per q, at about the speed of a counted multiply-add),
 * measured on a full-NIN shard (31,250 nodes × out-degree 64) and a sampled one (~1,500
 * nodes, out-degree 32–128).
 */
const COST_PER_HIT_Q = 1;
/** Counting: the integer pass per hit, a visit per (row, pair) cell, a power per (pair, q), and a multiply-add per q for each non-zero count. */
const COST_PER_COUNTED_HIT = 4;
const COST_PER_CELL = 0.5;
const COST_PER_TERM = 1;

/** The per-hit path's cost for `hits` box-mass entries and Q values of q. */
export function perHitCost(hits: number, Q: number): number {
  return hits * Q * COST_PER_HIT_Q;
}

/**
 * Counts of the selected nodes per (row, pair), or null when counting could cost more than
 * `budget` (see perHitCost; judged before any counting, from an upper bound of the non-zero
 * counts), its matrix would pass MAX_COUNT_CELLS, or its powers could leave the normal
 * float64 range. `hits`: the box-mass entries of the selected nodes.
 * Depends only on the shard's data, so a shard takes the same path, hence gives the same
 * bits, on every machine.
 */
export function pairCounts(box: BoxMass, { isSelected, present, maxN }: Selection, q: Float64Array, hits: number, budget: number): PairCounts | null {
  const Q = q.length;
  const { offsets, buckets, cum, kept } = box;
  const rows = present.length + 1;
  const low = present[0];
  const span = present[present.length - 1] - low + 1;
  if (!(span <= MAX_ROW_SPAN) || !powersInRange(q, maxN, box.nodes)) return null;
  // Group the selected nodes by N; within a group at most min(size, N) pairs occur per row.
  const groupOf = new Int32Array(maxN + 1).fill(-1);
  const size = new Int32Array(maxN + 1);
  for (let i = 0; i < box.nodes; i++) if (isSelected[i]) size[kept[i] + 1]++;
  let g = 0;
  let pairs = 0;
  let perRow = 0;
  for (let N = 1; N <= maxN; N++) {
    if (size[N] === 0) continue;
    groupOf[N] = g++;
    pairs += N;
    perRow += Math.min(size[N], N);
  }
  const cells = rows * pairs;
  const cost = hits * COST_PER_COUNTED_HIT + cells * COST_PER_CELL + pairs * Q * COST_PER_TERM + rows * perRow * Q;
  if (cells > MAX_COUNT_CELLS || pairs * Q > MAX_TERMS || cost >= budget) return null;
  const groups = new Int32Array(g);
  const pairStart = new Int32Array(g);
  for (let N = 1, at = 0; N <= maxN; N++) {
    if (groupOf[N] < 0) continue;
    groups[groupOf[N]] = N;
    pairStart[groupOf[N]] = at;
    at += N;
  }
  if (scratch.length < cells) scratch = new Int32Array(Math.min(MAX_COUNT_CELLS, Math.max(cells, scratch.length * 2)));
  const counts = scratch;
  counts.fill(0, 0, cells);
  const rowOf = new Int32Array(span);
  for (let k = 0; k < present.length; k++) rowOf[present[k] - low] = k + 1;
  for (let i = 0; i < box.nodes; i++) {
    if (!isSelected[i]) continue;
    const N = kept[i] + 1;
    // Differences along rows: the node starts at n = 1 on row 0 and moves from its previous
    // n to its new one on the row of each of its hits.
    const block = pairStart[groupOf[N]] * rows - 1;
    counts[block + 1]++;
    let prev = 1;
    for (let e = offsets[i]; e < offsets[i + 1]; e++) {
      const at = block + rowOf[buckets[e] - low] * N;
      const next = 1 + cum[e];
      counts[at + next]++;
      counts[at + prev]--;
      prev = next;
    }
  }
  // Running sums down the rows of each block turn the differences into counts.
  for (let k = 0; k < g; k++) {
    const N = groups[k];
    const block = pairStart[k] * rows;
    for (let at = block + N; at < block + rows * N; at++) counts[at] += counts[at - N];
  }
  return { rows, groups, pairStart, pairs, counts };
}

/**
 * Whether every power counting forms stays a normal float64: n^q and N^-q for n, N <= maxN,
 * and sums of up to `terms` of them, far from overflow and underflow.
 */
function powersInRange(q: Float64Array, maxN: number, terms: number): boolean {
  let big = 0;
  for (let k = 0; k < q.length; k++) big = Math.max(big, Math.abs(q[k]));
  return big * Math.log(maxN) + Math.log(terms + 1) < 600;
}

/**
 * S at every row and q from the counts: Σ over the row's non-zero counts of cnt · (n/N)^q,
 * non-negative terms added four pairs at a time (a quarter of the loads and stores of the
 * row). Fills all of `sums`.
 */
export function sumsFromCounts(c: PairCounts, q: Float64Array, maxN: number, sums: Float64Array): void {
  const { rows, groups, pairStart, pairs, counts } = c;
  const Q = q.length;
  const terms = pairTerms(c, q, maxN);
  const at = new Int32Array(pairs + 3);
  const cnt = new Float64Array(pairs + 3);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let k = 0; k < groups.length; k++) {
      const N = groups[k];
      const from = pairStart[k] * rows + r * N;
      for (let n = 0; n < N; n++) {
        const count = counts[from + n];
        if (count === 0) continue;
        at[m] = (pairStart[k] + n) * Q;
        cnt[m++] = count;
      }
    }
    // Pad to a multiple of four with zero counts (of pair 0, any pair would do).
    while ((m & 3) !== 0) {
      at[m] = 0;
      cnt[m++] = 0;
    }
    const out = r * Q;
    for (let j = 0; j < m; j += 4) {
      const a0 = at[j];
      const a1 = at[j + 1];
      const a2 = at[j + 2];
      const a3 = at[j + 3];
      const c0 = cnt[j];
      const c1 = cnt[j + 1];
      const c2 = cnt[j + 2];
      const c3 = cnt[j + 3];
      for (let k = 0; k < Q; k++) sums[out + k] += c0 * terms[a0 + k] + c1 * terms[a1 + k] + (c2 * terms[a2 + k] + c3 * terms[a3 + k]);
    }
  }
}

/** (n/N)^q = n^q · N^-q for every occurring pair, pair-major (Q contiguous per pair). */
function pairTerms({ groups, pairStart, pairs }: PairCounts, q: Float64Array, maxN: number): Float64Array {
  const Q = q.length;
  const { pos, neg } = powerTable(q, maxN);
  const terms = new Float64Array(pairs * Q);
  for (let g = 0; g < groups.length; g++) {
    const N = groups[g];
    const nq = N * Q;
    for (let n = 1; n <= N; n++) {
      const to = (pairStart[g] + n - 1) * Q;
      const pn = n * Q;
      for (let k = 0; k < Q; k++) terms[to + k] = pos[pn + k] * neg[nq + k];
    }
  }
  return terms;
}
