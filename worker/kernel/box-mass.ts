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
  const scale = bucketScale(p.decimals);
  const T = p.threshold;
  const { lo, hi } = bucketRange(p);
  // A narrow bucket range (the usual decimals 0-2) is counted per node in a reused dense
  // array — linear in degree; a wide one falls back to sorting the node's buckets.
  const dense = hi - lo + 1 <= DENSE_BUCKETS ? new Uint32Array(hi - lo + 1) : null;
  const offsets = new Uint32Array(nodes + 1);
  const kept = new Uint32Array(nodes);
  const out = new Growable(groupOffsets[nodes] >> 2);
  let scratch = new Int32Array(64);
  let edges = 0;
  let skipped = 0;
  for (let i = 0; i < nodes; i++) {
    const e0 = groupOffsets[i];
    const e1 = groupOffsets[i + 1];
    if (e1 - e0 > scratch.length) scratch = new Int32Array(e1 - e0);
    let k = 0;
    let min = hi;
    let max = lo;
    for (let e = e0 * stride; e < e1 * stride; e += stride) {
      const w = weights[e];
      if (w === 0) continue;
      if (!Number.isFinite(w)) {
        skipped++;
        continue;
      }
      edges++;
      const d = 1 / Math.abs(w);
      if (d > 1 && d <= T) {
        const b = rint(d * scale);
        scratch[k++] = b;
        if (b < min) min = b;
        if (b > max) max = b;
      }
    }
    kept[i] = k;
    if (dense && k > 0) {
      for (let j = 0; j < k; j++) dense[scratch[j] - lo]++;
      let cum = 0;
      for (let b = min - lo; b <= max - lo; b++) {
        const c = dense[b];
        if (c !== 0) {
          cum += c;
          dense[b] = 0;
          out.push(b + lo, cum);
        }
      }
    } else {
      const sorted = scratch.subarray(0, k).sort();
      let j = 0;
      while (j < k) {
        const b = sorted[j];
        while (j < k && sorted[j] === b) j++;
        out.push(b, j);
      }
    }
    offsets[i + 1] = out.length;
  }
  return out.finish(offsets, kept, edges, skipped);
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
