import { AnalysisError } from '../../proto/errors.js';
import type { MfaParams } from '../../proto/shard.js';
import { bucketScale } from '../../worker/kernel/buckets.js';
import { fitLine } from '../../worker/kernel/least-squares.js';
import type { MergedSums } from './merge.js';

export interface Spectrum {
  q: number[];
  tau: number[];
  alpha: number[];
  f: number[];
  /** The q at which each alpha and f sits (alpha_k is the forward difference from q_k): q without its last value. */
  qAlpha: number[];
  alpha0: number;
  alpha0Index: number;
  width: number;
  nodesSelected: number;
  radii: number[];
  fit: { r2: number[]; stderr: (number | null)[] };
}

/** Values of f within this relative distance of the largest count as a tie (SPEC §3). */
const PEAK_TIE = 1e-10;

/** tau(q) from merged partition sums, then alpha, f(alpha), alpha0 and the width. */
export function spectrumFromSums(m: MergedSums, p: MfaParams): Spectrum {
  if (m.selected === 0) {
    throw new AnalysisError(`no node was selected: none has more than ${p.minNeighbors} neighbours at distance in (1, ${p.threshold}]`);
  }
  const G = m.present.length;
  if (G < 2) {
    throw new AnalysisError(`only ${G} distinct radius among the selected nodes; tau(q) needs at least two (try more --decimals or a larger --threshold)`);
  }
  const scale = bucketScale(p.decimals);
  const radii = Array.from(m.present, (b) => b / scale);
  const D = radii[G - 1];
  const x = radii.map((r) => Math.log(r / D));
  const Q = p.q.length;
  const tau: number[] = [];
  const r2: number[] = [];
  const stderr: (number | null)[] = [];
  const y = new Float64Array(G);
  for (let k = 0; k < Q; k++) {
    for (let g = 0; g < G; g++) y[g] = Math.log(m.sums[g * Q + k]);
    const fit = fitLine(x, y);
    tau.push(fit.slope);
    r2.push(fit.r2);
    stderr.push(fit.stderr);
  }
  return { ...legendre(p.q, tau), tau, q: p.q.slice(), nodesSelected: m.selected, radii, fit: { r2, stderr } };
}

/** alpha_k = dtau/dq by forward differences and f_k = q_k alpha_k - tau_k (the reference's indexing). */
export function legendre(q: readonly number[], tau: readonly number[]): Pick<Spectrum, 'alpha' | 'f' | 'qAlpha' | 'alpha0' | 'alpha0Index' | 'width'> {
  const alpha: number[] = [];
  const f: number[] = [];
  for (let k = 0; k + 1 < q.length; k++) {
    const a = (tau[k + 1] - tau[k]) / (q[k + 1] - q[k]);
    alpha.push(a);
    f.push(q[k] * a - tau[k]);
  }
  const maxF = Math.max(...f);
  const tol = PEAK_TIE * Math.max(1, Math.abs(maxF));
  const alpha0Index = f.findIndex((v) => v >= maxF - tol);
  return { alpha, f, qAlpha: q.slice(0, alpha.length), alpha0: alpha[alpha0Index], alpha0Index, width: Math.max(...alpha) - Math.min(...alpha) };
}
