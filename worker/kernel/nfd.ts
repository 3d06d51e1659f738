import type { NfdParams } from '../../proto/shard.js';
import { slopeOf } from './least-squares.js';
import { roundDecimal } from './round-decimal.js';

/** Fewer kept distances than this give NFD 0 (the reference's rule). */
const MIN_DISTANCES = 11;

/**
 * Node fractal dimension (SPEC §3) of every node of a node-grouped weight list:
 * node i owns weights[e * stride] for e in [offsets[i], offsets[i+1]).
 */
export function nodeFractalDimensions(weights: Float64Array, offsets: Uint32Array, p: NfdParams, stride = 1): Float64Array {
  const nodes = offsets.length - 1;
  const out = new Float64Array(nodes);
  let d = new Float64Array(64);
  let xs = new Float64Array(64);
  let ys = new Float64Array(64);
  for (let i = 0; i < nodes; i++) {
    const e0 = offsets[i];
    const e1 = offsets[i + 1];
    if (e1 - e0 > d.length) {
      d = new Float64Array(e1 - e0);
      xs = new Float64Array(e1 - e0);
      ys = new Float64Array(e1 - e0);
    }
    let k = 0;
    for (let e = e0 * stride; e < e1 * stride; e += stride) {
      const w = weights[e];
      if (w === 0 || !Number.isFinite(w)) continue;
      const dist = 1 / Math.abs(w);
      if (dist > 0 && dist <= p.threshold) d[k++] = dist;
    }
    if (k < MIN_DISTANCES) continue;
    const sorted = d.subarray(0, k).sort();
    for (let j = 0; j < k; j++) sorted[j] = roundDecimal(sorted[j], p.decimals);
    let n = 1;
    let points = 0;
    let j = 0;
    while (j < k) {
      const v = sorted[j];
      while (j < k && sorted[j] === v) {
        n++;
        j++;
      }
      if (v > 0) {
        xs[points] = Math.log(v);
        ys[points++] = Math.log(n);
      }
    }
    out[i] = points < 2 ? 0 : slopeOf(xs, ys, points);
  }
  return out;
}
