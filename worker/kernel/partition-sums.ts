import type { BoxMass } from './box-mass.js';
import { pairCounts, perHitCost, sumsFromCounts } from './pair-counts.js';
import { powerTable } from './power-table.js';

/**
 * One shard's share of the partition function (SPEC §5), in sparse form: the buckets its
 * selected nodes hit, and S at each of them. Between its own present buckets a shard's S
 * is constant (a node's N_i(b) only changes where it has a radius), so the coordinator can
 * read it at any global radius: row 0 holds S below the first present bucket, row k+1 holds
 * S at present[k]. Rows are q-contiguous: sums[row * Q + k].
 */
export interface PartitionPartial {
  selected: number;
  present: Int32Array;
  sums: Float64Array;
}

/** Dense marks are used for the present set while the bucket range is at most this wide. */
const DENSE_RANGE_LIMIT = 1 << 22;

/** The distinct buckets hit by the selected nodes, ascending (shared with the GPU path). */
export function presentBuckets(box: BoxMass, isSelected: Uint8Array): Int32Array {
  let min = Infinity;
  let max = -Infinity;
  let total = 0;
  for (let i = 0; i < box.nodes; i++) {
    if (!isSelected[i]) continue;
    const a = box.offsets[i];
    const z = box.offsets[i + 1];
    min = Math.min(min, box.buckets[a]);
    max = Math.max(max, box.buckets[z - 1]);
    total += z - a;
  }
  if (total === 0) return new Int32Array(0);
  if (max - min < DENSE_RANGE_LIMIT) {
    const marks = new Uint8Array(max - min + 1);
    const { offsets, buckets } = box;
    // Marked unconditionally (no branch to mispredict), counted after.
    for (let i = 0; i < box.nodes; i++) {
      if (!isSelected[i]) continue;
      const z = offsets[i + 1];
      for (let e = offsets[i]; e < z; e++) marks[buckets[e] - min] = 1;
    }
    let count = 0;
    for (let m = 0; m < marks.length; m++) count += marks[m];
    const out = new Int32Array(count);
    let k = 0;
    for (let m = 0; m < marks.length; m++) if (marks[m]) out[k++] = m + min;
    return out;
  }
  const all = new Int32Array(total);
  let k = 0;
  for (let i = 0; i < box.nodes; i++) {
    if (isSelected[i]) for (let e = box.offsets[i]; e < box.offsets[i + 1]; e++) all[k++] = box.buckets[e];
  }
  all.sort();
  let u = 0;
  for (let j = 0; j < all.length; j++) if (j === 0 || all[j] !== all[j - 1]) all[u++] = all[j];
  return all.slice(0, u);
}

/** Index of bucket b in the sorted present list. */
export function indexer(present: Int32Array): (b: number) => number {
  const min = present[0];
  const span = present[present.length - 1] - min + 1;
  if (span <= DENSE_RANGE_LIMIT) {
    const at = new Int32Array(span);
    for (let k = 0; k < present.length; k++) at[present[k] - min] = k;
    return (b) => at[b - min];
  }
  return (b) => {
    let lo = 0;
    let hi = present.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (present[mid] < b) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/**
 * S[q][b] = sum over selected nodes of (N_i(b) / N_i(D))^q. Dense shards (many nodes, small
 * N_i) are summed by counting nodes per (N_i(b), N_i) pair (pair-counts.ts), when that costs
 * less; otherwise it is accumulated from each node's steps only (work ∝ hits × q, not
 * buckets × q). Each node's term changes monotonically in b,
 * so for q >= 0 we add its positive increments bottom-up and for q < 0 top-down: every
 * addend is non-negative and no large value is later cancelled, which keeps the sums
 * accurate to a few ulp even where (1/N)^q is huge.
 */
export function partitionSums(box: BoxMass, q: Float64Array, minNeighbors: number): PartitionPartial {
  return partitionSumsOf(box, q, selectNodes(box, minNeighbors));
}

/** Which nodes of a shard count (more than minNeighbors neighbours within the threshold). */
export interface Selection {
  /** 1 for a selected node. */
  isSelected: Uint8Array;
  selected: number;
  /** Buckets hit by selected nodes, ascending. */
  present: Int32Array;
  /** Largest N_i = 1 + |K_i| over selected nodes (1 when none). */
  maxN: number;
  /** Box-mass entries of the selected nodes: the work of the per-hit sums. */
  hits: number;
}

export function selectNodes(box: BoxMass, minNeighbors: number): Selection {
  const isSelected = new Uint8Array(box.nodes);
  let selected = 0;
  let maxN = 1;
  let hits = 0;
  for (let i = 0; i < box.nodes; i++) {
    if (box.kept[i] > minNeighbors) {
      isSelected[i] = 1;
      selected++;
      maxN = Math.max(maxN, box.kept[i] + 1);
      hits += box.offsets[i + 1] - box.offsets[i];
    }
  }
  return { isSelected, selected, present: presentBuckets(box, isSelected), maxN, hits };
}

/** partitionSums for a selection already made (the GPU path makes it to plan its kernels). */
export function partitionSumsOf(box: BoxMass, q: Float64Array, selection: Selection): PartitionPartial {
  const { isSelected, selected, present, maxN, hits } = selection;
  const Q = q.length;
  const P = present.length;
  const sums = new Float64Array((P + 1) * Q);
  if (selected === 0) return { selected, present, sums };

  // Columns [0, z) hold q < 0 (accumulated top-down), [z, Q) hold q >= 0 (bottom-up).
  let z = 0;
  while (z < Q && q[z] < 0) z++;
  for (let k = z + 1; k < Q; k++) if (q[k] < 0) throw new Error('q grid must be ascending');

  const counts = pairCounts(box, selection, q, hits, perHitCost(hits, Q));
  if (counts) {
    sumsFromCounts(counts, q, maxN, sums);
    return { selected, present, sums };
  }
  const indexOf = indexer(present);
  const step = uniformStep(q);
  const acc: Accumulation = { box, isSelected, indexOf, z, Q, P, sums, maxN };
  if (step !== null) accumulateGeometric(acc, q[0], step);
  else accumulateTabled(acc, q);
  for (let r = 1; r <= P; r++) {
    const row = r * Q;
    const before = row - Q;
    for (let k = z; k < Q; k++) sums[row + k] += sums[before + k];
  }
  for (let r = P - 1; r >= 0; r--) {
    const row = r * Q;
    const after = row + Q;
    for (let k = 0; k < z; k++) sums[row + k] += sums[after + k];
  }
  return { selected, present, sums };
}

/** What both accumulation strategies share: the shard, its layout of rows, the sums to fill. */
interface Accumulation {
  box: BoxMass;
  isSelected: Uint8Array;
  indexOf: (b: number) => number;
  /** Columns [0, z) are q < 0, [z, Q) are q >= 0. */
  z: number;
  Q: number;
  /** Present buckets: rows 0..P of `sums`. */
  P: number;
  sums: Float64Array;
  maxN: number;
}

/** The spacing of an evenly spaced grid (to 1e-12), or null (also for a single q: no spacing). */
function uniformStep(q: Float64Array): number | null {
  const Q = q.length;
  if (Q < 2) return null;
  const dq = (q[Q - 1] - q[0]) / (Q - 1);
  for (let k = 0; k < Q; k++) if (Math.abs(q[0] + k * dq - q[k]) > 1e-12) return null;
  return dq;
}

/**
 * Evenly spaced q (the usual grid): successive powers are one multiplication apart,
 * x^(q0 + (k+1)dq) = x^(q0 + k dq) · x^dq, so each hit costs two table products and then
 * two multiplications per q — no loads of power tables in the inner loop.
 *
 * A node's hits go two at a time. Each power is a chain of multiplications whose latency,
 * not the multiplier's throughput, bounds the loop; two hits make four independent chains.
 * The bits are those of one hit at a time: every power is the same product in the same
 * order, and the two hits of a pair add to different sums (a node's buckets are distinct and
 * ascending: where A's upper row is B's lower row, A adds there for q >= 0 and B for q < 0).
 */
function accumulateGeometric({ box, isSelected, indexOf, z, Q, P, sums, maxN }: Accumulation, q0: number, dq: number): void {
  const { pos: base0, neg: inv0 } = powerTable(Float64Array.of(q0), maxN);
  const { pos: pd, neg: md } = powerTable(Float64Array.of(dq), maxN);
  const { offsets, cum, buckets } = box;
  const top = P * Q;
  for (let i = 0; i < box.nodes; i++) {
    if (!isSelected[i]) continue;
    const N = box.kept[i] + 1;
    const i0 = inv0[N];
    const id = md[N];
    // Below the first hit N_i = 1: the term is (1/N)^q.
    let c = i0;
    for (let k = 0; k < Q; k++, c *= id) if (k >= z) sums[k] += c;
    for (let k = 0; k < z; k++) sums[top + k] += 1;
    // (prev/N)^q0 and (prev/N)^dq, starting from prev = 1.
    let y0 = i0;
    let ys = id;
    const end = offsets[i + 1];
    let e = offsets[i];
    for (; e + 1 < end; e += 2) {
      const a0 = base0[1 + cum[e]] * i0;
      const as = pd[1 + cum[e]] * id;
      const b0 = base0[1 + cum[e + 1]] * i0;
      const bs = pd[1 + cum[e + 1]] * id;
      const downA = indexOf(buckets[e]) * Q;
      const downB = indexOf(buckets[e + 1]) * Q;
      // A steps from the previous hit's powers (y0, ys) to its own, B from A's to its own.
      let an = a0;
      let ap = y0;
      let bn = b0;
      let bp = a0;
      let k = 0;
      for (; k < z; k++) {
        sums[downA + k] += ap - an;
        sums[downB + k] += bp - bn;
        an *= as;
        ap *= ys;
        bn *= bs;
        bp *= as;
      }
      for (; k < Q; k++) {
        sums[downA + Q + k] += an - ap;
        sums[downB + Q + k] += bn - bp;
        an *= as;
        ap *= ys;
        bn *= bs;
        bp *= as;
      }
      y0 = b0;
      ys = bs;
    }
    if (e < end) {
      const x0 = base0[1 + cum[e]] * i0;
      const xs = pd[1 + cum[e]] * id;
      const down = indexOf(buckets[e]) * Q;
      let cn = x0;
      let cp = y0;
      let k = 0;
      for (; k < z; k++, cn *= xs, cp *= ys) sums[down + k] += cp - cn;
      for (; k < Q; k++, cn *= xs, cp *= ys) sums[down + Q + k] += cn - cp;
    }
  }
}

/** Any ascending grid: n^q and N^-q from tables, three loads per term. */
function accumulateTabled({ box, isSelected, indexOf, z, Q, P, sums, maxN }: Accumulation, q: Float64Array): void {
  const { pos, neg } = powerTable(q, maxN);
  const top = P * Q;
  for (let i = 0; i < box.nodes; i++) {
    if (!isSelected[i]) continue;
    const N = box.kept[i] + 1;
    const nRow = N * Q;
    // Below the first hit N_i = 1: the base term (1/N)^q = N^-q.
    for (let k = z; k < Q; k++) sums[k] += neg[nRow + k];
    for (let k = 0; k < z; k++) sums[top + k] += 1;
    let prev = 1;
    for (let e = box.offsets[i]; e < box.offsets[i + 1]; e++) {
      const n = 1 + box.cum[e];
      const row = indexOf(box.buckets[e]) + 1;
      const up = row * Q;
      const down = (row - 1) * Q;
      const pn = n * Q;
      const pp = prev * Q;
      for (let k = z; k < Q; k++) sums[up + k] += (pos[pn + k] - pos[pp + k]) * neg[nRow + k];
      for (let k = 0; k < z; k++) sums[down + k] += (pos[pp + k] - pos[pn + k]) * neg[nRow + k];
      prev = n;
    }
  }
}
