import { CODE_FIRST_BUCKET, CODE_NONFINITE, CODE_ZERO, bucketRange, bucketScale, rint, type BucketParams } from './buckets.js';

/**
 * Per-node box masses in compressed form: for node i, entries offsets[i]..offsets[i+1] list
 * the distinct buckets it hits (ascending) and how many of its kept radii are <= each, so
 * N_i(b) = 1 + cum. Typed arrays only: size grows with nodes × distinct buckets, never
 * with a JS object per edge.
 */
export interface BoxMass {
  nodes: number;
  offsets: Uint32Array;
  buckets: Int32Array;
  cum: Uint32Array;
  /** |K_i|: distances kept by the (1, T] filter. */
  kept: Uint32Array;
  /** Edges seen (non-zero, finite weights). */
  edges: number;
  skippedNonFinite: number;
}

/** Widest bucket range counted densely per node (decimals <= 2 at the default threshold). */
const DENSE_BUCKETS = 1 << 16;

class Growable {
  buckets: Int32Array;
  cum: Uint32Array;
  length = 0;
  constructor(capacity: number) {
    this.buckets = new Int32Array(Math.max(16, capacity));
    this.cum = new Uint32Array(this.buckets.length);
  }
  push(b: number, c: number): void {
    if (this.length === this.buckets.length) {
      const nb = new Int32Array(this.length * 2);
      nb.set(this.buckets);
      const nc = new Uint32Array(this.length * 2);
      nc.set(this.cum);
      this.buckets = nb;
      this.cum = nc;
    }
    this.buckets[this.length] = b;
    this.cum[this.length++] = c;
  }
  finish(offsets: Uint32Array, kept: Uint32Array, edges: number, skippedNonFinite: number): BoxMass {
    const n = this.length;
    return { nodes: kept.length, offsets, buckets: this.buckets.subarray(0, n), cum: this.cum.subarray(0, n), kept, edges, skippedNonFinite };
  }
}

/**
 * Box masses of nodes whose out-weights are given grouped: node i owns
 * weights[e * stride] for e in [groupOffsets[i], groupOffsets[i+1]).
 */
export function boxMassFromGroups(weights: Float64Array, groupOffsets: Uint32Array, p: BucketParams, stride = 1): BoxMass {
  const nodes = groupOffsets.length - 1;
  const { lo, hi } = bucketRange(p);
  // A node has at most one entry per weight: outputs sized by that bound are never grown
  // (pages past what is written are never touched, so the bound costs address space only).
  const capacity = groupOffsets[nodes] - groupOffsets[0];
  const out: BoxMass = {
    nodes,
    offsets: new Uint32Array(nodes + 1),
    buckets: new Int32Array(capacity),
    cum: new Uint32Array(capacity),
    kept: new Uint32Array(nodes),
    edges: 0,
    skippedNonFinite: 0,
  };
  const scan = { weights, groupOffsets, stride, threshold: p.threshold, scale: bucketScale(p.decimals), lo, out };
  const used = hi - lo + 1 <= DENSE_BUCKETS ? countMarked(scan, hi - lo + 1) : countSorted(scan);
  out.buckets = out.buckets.subarray(0, used);
  out.cum = out.cum.subarray(0, used);
  return out;
}

/** What both per-node counting strategies read and fill. */
interface GroupScan {
  weights: Float64Array;
  groupOffsets: Uint32Array;
  stride: number;
  threshold: number;
  scale: number;
  lo: number;
  out: BoxMass;
}

/** Per-thread scratch, grown on demand: counts per bucket and a bitmap of the buckets hit. */
let counts = new Uint32Array(0);
let marks = new Int32Array(0);

/**
 * Narrow bucket grids: each kept distance increments its bucket's count and sets its bit;
 * the node's entries are then read off the set bits in ascending order (count trailing
 * zeros), so the work is edges + distinct buckets + bitmap words, never the whole grid.
 * Counts and bits are cleared as they are read, ready for the next node.
 */
function countMarked({ weights, groupOffsets, stride, threshold: T, scale, lo, out }: GroupScan, range: number): number {
  if (counts.length < range) counts = new Uint32Array(range);
  if (marks.length < (range + 31) >> 5) marks = new Int32Array((range + 31) >> 5);
  const cnt = counts;
  const bits = marks;
  const { offsets, buckets, cum, kept } = out;
  const nodes = kept.length;
  // rint for 0 <= x < 2^52 without a branch: x + 2^52 has no fraction bits, so the addition
  // itself rounds x to an integer, half to even. (Math.round costs a mispredicted branch per
  // edge here, and a double-typed bucket slows every later use of it.)
  const shift = 4503599627370496;
  let used = 0;
  let zeros = 0;
  let skipped = 0;
  for (let i = 0; i < nodes; i++) {
    const e1 = groupOffsets[i + 1] * stride;
    let k = 0;
    let wMin = range;
    let wMax = -1;
    for (let e = groupOffsets[i] * stride; e < e1; e += stride) {
      const a = Math.abs(weights[e]);
      // NaN, ±Inf (d = NaN, 0) and zero (d = Inf) all fail the range test: sort them out there.
      const d = 1 / a;
      if (d > 1 && d <= T) {
        const b = ((d * scale + shift - shift) | 0) - lo;
        const w = b >> 5;
        cnt[b]++;
        bits[w] |= 1 << (b & 31);
        if (w < wMin) wMin = w;
        if (w > wMax) wMax = w;
        k++;
      } else if (a === 0) zeros++;
      else if (!(a < Infinity)) skipped++;
    }
    kept[i] = k;
    let c = 0;
    for (let w = wMin; w <= wMax; w++) {
      let x = bits[w];
      bits[w] = 0;
      while (x !== 0) {
        const low = x & -x;
        x ^= low;
        const b = (w << 5) + 31 - Math.clz32(low);
        c += cnt[b];
        cnt[b] = 0;
        buckets[used] = b + lo;
        cum[used++] = c;
      }
    }
    offsets[i + 1] = used;
  }
  out.edges = (groupOffsets[nodes] - groupOffsets[0]) - zeros - skipped;
  out.skippedNonFinite = skipped;
  return used;
}

/** Wide bucket grids (many decimals): sort each node's buckets and count runs. */
function countSorted({ weights, groupOffsets, stride, threshold: T, scale, out }: GroupScan): number {
  const { offsets, buckets, cum, kept } = out;
  const nodes = kept.length;
  let scratch = new Int32Array(64);
  let used = 0;
  let zeros = 0;
  let skipped = 0;
  for (let i = 0; i < nodes; i++) {
    const e0 = groupOffsets[i];
    const e1 = groupOffsets[i + 1];
    if (e1 - e0 > scratch.length) scratch = new Int32Array(e1 - e0);
    let k = 0;
    for (let e = e0 * stride; e < e1 * stride; e += stride) {
      const a = Math.abs(weights[e]);
      const d = 1 / a;
      if (d > 1 && d <= T) scratch[k++] = rint(d * scale);
      else if (a === 0) zeros++;
      else if (!(a < Infinity)) skipped++;
    }
    kept[i] = k;
    const sorted = scratch.subarray(0, k).sort();
    let j = 0;
    while (j < k) {
      const b = sorted[j];
      while (j < k && sorted[j] === b) j++;
      buckets[used] = b;
      cum[used++] = j;
    }
    offsets[i + 1] = used;
  }
  out.edges = (groupOffsets[nodes] - groupOffsets[0]) - zeros - skipped;
  out.skippedNonFinite = skipped;
  return used;
}

/**
 * Box masses from a dense node-major histogram of weight codes (see buckets.ts): the
 * full-matrix path counts codes with one increment per weight, then compresses here.
 */
export function boxMassFromCodeHistogram(hist: Uint32Array | Uint16Array, nodes: number, p: BucketParams): BoxMass {
  const { lo, hi } = bucketRange(p);
  const nc = CODE_FIRST_BUCKET + hi - lo + 1;
  const offsets = new Uint32Array(nodes + 1);
  const kept = new Uint32Array(nodes);
  const out = new Growable(nodes * 16);
  let edges = 0;
  let skipped = 0;
  for (let i = 0; i < nodes; i++) {
    const base = i * nc;
    let total = 0;
    for (let c = 0; c < nc; c++) total += hist[base + c];
    skipped += hist[base + CODE_NONFINITE];
    edges += total - hist[base + CODE_ZERO] - hist[base + CODE_NONFINITE];
    let cum = 0;
    for (let c = CODE_FIRST_BUCKET; c < nc; c++) {
      const n = hist[base + c];
      if (n !== 0) {
        cum += n;
        out.push(lo + c - CODE_FIRST_BUCKET, cum);
      }
    }
    kept[i] = cum;
    offsets[i + 1] = out.length;
  }
  return out.finish(offsets, kept, edges, skipped);
}

/**
 * Box masses from each node's list of weight codes (`degree` codes per node, node-major),
 * the form used when the bucket grid is too wide for a dense histogram: sorting a node's
 * codes groups them exactly as the histogram counts them, so the result is identical.
 * Sorts `codes` in place.
 */
export function boxMassFromCodeLists(codes: Uint32Array, nodes: number, degree: number, p: BucketParams): BoxMass {
  const { lo } = bucketRange(p);
  const offsets = new Uint32Array(nodes + 1);
  const kept = new Uint32Array(nodes);
  const out = new Growable(nodes * 16);
  let edges = 0;
  let skipped = 0;
  for (let i = 0; i < nodes; i++) {
    const list = codes.subarray(i * degree, (i + 1) * degree).sort();
    let j = 0;
    while (j < degree && list[j] === CODE_ZERO) j++;
    const zeros = j;
    while (j < degree && list[j] === CODE_NONFINITE) j++;
    skipped += j - zeros;
    edges += degree - j;
    while (j < degree && list[j] < CODE_FIRST_BUCKET) j++;
    let cum = 0;
    while (j < degree) {
      const c = list[j];
      const from = j;
      while (j < degree && list[j] === c) j++;
      cum += j - from;
      out.push(lo + c - CODE_FIRST_BUCKET, cum);
    }
    kept[i] = cum;
    offsets[i + 1] = out.length;
  }
  return out.finish(offsets, kept, edges, skipped);
}
