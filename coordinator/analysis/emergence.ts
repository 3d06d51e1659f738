import { AnalysisError, UsageError } from '../../proto/errors.js';
import type { SampleResult } from './model-analysis.js';
import { stepOf } from './series-order.js';

/** The reference's filter_mode: which samples count towards a checkpoint's means. */
export type FilterMode = 0 | 1 | 2 | 3;

export function parseFilter(raw: string): FilterMode {
  if (!/^[0-3]$/.test(raw.trim())) throw new UsageError(`--filter expects 0, 1, 2 or 3, got "${raw}"`);
  return Number(raw) as FilterMode;
}

/** Values of f within this of zero are the q = 0 tie, not positive (SPEC §3). */
const ZERO_TIE = 1e-10;

/**
 * Whether f has a value above 0. At q = 0 the exact f is -tau(0) = 0 on both sides of the
 * tie, so the reference's literal `f > 0` there tests rounding noise (on the series it drops
 * a sample for f = 1.4e-17); as with alpha0 we decide as exact arithmetic would.
 */
export function hasPositiveF(f: readonly number[]): boolean {
  const tol = ZERO_TIE * Math.max(1, ...f.map(Math.abs));
  return f.some((v) => v > tol);
}

/** Mode 1 drops a sample whose f has a positive value; mode 2 one whose alpha rises > 0.01 above its first value. */
export function keepSample(s: Pick<SampleResult, 'f' | 'alpha'>, mode: FilterMode): boolean {
  const fPositive = hasPositiveF(s.f);
  const alphaRise = Math.max(...s.alpha) - s.alpha[0] > 0.01;
  if (mode === 1) return !fPositive;
  if (mode === 2) return !alphaRise;
  if (mode === 3) return !fPositive && !alphaRise;
  return true;
}

export interface Stat {
  mean: number | null;
  /** Population standard deviation over the kept samples (ddof 0, as the reference's np.std). */
  std: number | null;
  /** The sample indices that passed the filter. */
  samples: Array<number | 'full'>;
}

export interface EmergencePoint {
  label: string;
  /** The training step the label names (`step1000` → 1000), or null. */
  step: number | null;
  model: string;
  /** Hub checkpoints: the commit analysed. */
  commit?: string;
  alpha0: Stat;
  width: Stat;
  /** E(t) = (w(t)/w(t0)) · ln(alpha0(t0)/alpha0(t)); null when no sample passed the filter. */
  E: number | null;
  /**
   * The spread of E over the kept samples: population std of E_s = (w_s(t)/w(t0))·ln(alpha0(t0)/alpha0_s(t)),
   * each sample against the initial checkpoint's means; null with E.
   */
  EStd: number | null;
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const populationStd = (v: number[]) => {
  const m = mean(v);
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
};

function stat(kept: SampleResult[], key: 'alpha0' | 'width'): Stat {
  if (kept.length === 0) return { mean: null, std: null, samples: [] };
  const v = kept.map((s) => s[key]);
  return { mean: mean(v), std: populationStd(v), samples: kept.map((s) => s.sample) };
}

/** One sample of a checkpoint as reports give it: its spectrum, and whether the filter kept it. */
export interface SampleRecord {
  sample: number | 'full';
  kept: boolean;
  alpha0: number;
  width: number;
  nodesSelected: number;
  q: number[];
  tau: number[];
  /** The q of each alpha and f value (alpha, f and qAlpha have one length). */
  qAlpha: number[];
  alpha: number[];
  f: number[];
  radii: number[];
  fit: SampleResult['fit'];
}

export function sampleRecords(samples: readonly SampleResult[], mode: FilterMode): SampleRecord[] {
  return samples.map((s) => ({
    sample: s.sample,
    kept: keepSample(s, mode),
    alpha0: s.alpha0,
    width: s.width,
    nodesSelected: s.nodesSelected,
    q: s.q,
    tau: s.tau,
    qAlpha: s.qAlpha,
    alpha: s.alpha,
    f: s.f,
    radii: s.radii,
    fit: s.fit,
  }));
}

/** SPEC §4, with checkpoints[0] as the initial model t0. */
export function emergenceCurve(checkpoints: Array<{ label: string; model: string; commit?: string; samples: SampleResult[] }>, mode: FilterMode): EmergencePoint[] {
  const keptOf = checkpoints.map(({ samples }) => samples.filter((s) => keepSample(s, mode)));
  const points: EmergencePoint[] = checkpoints.map(({ label, model, commit }, i) => {
    const kept = keptOf[i];
    return { label, step: stepOf(label) ?? null, model, ...(commit ? { commit } : {}), alpha0: stat(kept, 'alpha0'), width: stat(kept, 'width'), E: null, EStd: null };
  });
  const first = points[0];
  if (first.alpha0.mean === null || first.width.mean === null) {
    throw new AnalysisError(`no sample of the initial checkpoint ${first.label} passes --filter ${mode}; E is undefined`);
  }
  const [a0, w0] = [first.alpha0.mean, first.width.mean];
  points.forEach((p, i) => {
    if (p.alpha0.mean === null || p.width.mean === null) return;
    p.E = (p.width.mean / w0) * Math.log(a0 / p.alpha0.mean);
    p.EStd = populationStd(keptOf[i].map((s) => (s.width / w0) * Math.log(a0 / s.alpha0)));
  });
  return points;
}
