import { moments } from '../../worker/kernel/least-squares.js';
import { MT19937 } from '../../worker/nin/mt19937.js';

/**
 * Correlation statistics for benchmark scores against E: Pearson and Spearman coefficients,
 * their two-sided p-values from Student's t with n - 2 degrees of freedom (as SciPy's
 * pearsonr and spearmanr), and percentile bootstrap intervals from a seeded generator, so a
 * report is reproducible. The t tail needs the regularized incomplete beta function, written
 * here (Lentz's continued fraction) rather than pulled in as a dependency.
 */

/** ln Γ(x) for x > 0: Lanczos (g = 7, 9 terms), about 1e-15 relative. */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  const z = x - 1;
  let a = c[0];
  for (let i = 1; i < 9; i++) a += c[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of I_x(a, b) (modified Lentz), valid for x < (a + 1) / (a + b + 2). */
function betaFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let h = d;
  for (let m = 1; m <= 10000; m++) {
    const m2 = 2 * m;
    for (const num of [(m * (b - m) * x) / ((a + m2 - 1) * (a + m2)), (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1))]) {
      d = 1 + num * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + num / c;
      if (Math.abs(c) < tiny) c = tiny;
      h *= d * c;
    }
    if (Math.abs(d * c - 1) < 1e-15) return h;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b), for a, b > 0 and x in [0, 1]. */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  // The fraction converges fast only on one side of the mean; use the symmetry on the other.
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(a, b, x)) / a : 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/** Two-sided p-value of a correlation coefficient r from n pairs: t = r √((n-2)/(1-r²)), df = n - 2. */
export function correlationPValue(r: number, n: number): number | null {
  if (n < 3 || !Number.isFinite(r)) return null;
  if (Math.abs(r) >= 1) return 0;
  const df = n - 2;
  const t2 = (r * r * df) / (1 - r * r);
  return incompleteBeta(df / (df + t2), df / 2, 0.5);
}

/** Pearson's r, or null when either vector is constant (or shorter than 2). */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number | null {
  const n = x.length;
  if (n < 2) return null;
  const { sxx, sxy, syy } = moments(x, y, n);
  if (sxx === 0 || syy === 0) return null;
  // Clamped: rounding can put a perfect correlation a hair outside [-1, 1].
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** Ranks 1..n, ties sharing their average rank (SciPy's rankdata 'average'). */
export function ranks(v: ArrayLike<number>): Float64Array {
  const n = v.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => v[a] - v[b]);
  const out = new Float64Array(n);
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && v[order[j + 1]] === v[order[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) out[order[k]] = rank;
    i = j + 1;
  }
  return out;
}

/** Spearman's rho: Pearson's r of the average ranks. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number | null {
  return pearson(ranks(x), ranks(y));
}

export interface Interval {
  low: number;
  high: number;
  /** Resamples whose coefficient was defined (a resample of one repeated pair is not). */
  resamples: number;
}

/**
 * Percentile bootstrap interval (level 0.95 by default) of `stat` over pairs drawn with
 * replacement; MT19937 seeded with `seed`, so the same inputs give the same interval.
 * Linear interpolation between order statistics, as NumPy's default percentile.
 */
export function bootstrapInterval(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  stat: (x: Float64Array, y: Float64Array) => number | null,
  opts: { resamples: number; seed: number; level?: number },
): Interval | null {
  const n = x.length;
  if (n < 3) return null;
  const rng = new MT19937(opts.seed);
  const bx = new Float64Array(n);
  const by = new Float64Array(n);
  const values: number[] = [];
  for (let b = 0; b < opts.resamples; b++) {
    for (let i = 0; i < n; i++) {
      const k = Math.floor((rng.nextUint32() / 4294967296) * n);
      bx[i] = x[k];
      by[i] = y[k];
    }
    const v = stat(bx, by);
    if (v !== null) values.push(v);
  }
  if (values.length === 0) return null;
  values.sort((a, b) => a - b);
  const tail = (1 - (opts.level ?? 0.95)) / 2;
  return { low: percentile(values, tail), high: percentile(values, 1 - tail), resamples: values.length };
}

/** The p-quantile of ascending values, interpolating linearly (NumPy's 'linear' method). */
export function percentile(sorted: readonly number[], p: number): number {
  const at = p * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (at - lo) * (sorted[hi] - sorted[lo]);
}
