/**
 * The precision contract of the float32 kernels, as numbers the tests check.
 *
 * Per shard and per entry S[row][q], relative to the float64 value:
 *   - n^q and N^-q are computed in float64 on the host and rounded to float32: u each;
 *   - their product is rounded once on the device: u;
 *   - a block of BLOCK terms, all positive, is summed with Kahan compensation:
 *     2u + O(BLOCK u²) of the block's sum (Higham, Accuracy and Stability, §4.3);
 *   - the host adds blocks and shards in float64: negligible.
 * So |ΔS| / S <= 5u. Merged Z is a sum of positive S, so it keeps that bound, and
 * tau (a least-squares slope of ln Z on x = ln(r/D)) moves by at most 5u · W(x),
 * W = Σ|x_g - x̄| / Σ(x_g - x̄)²: the grid of radii decides how errors in ln Z amplify.
 */
export const UNIT_ROUNDOFF_F32 = 2 ** -24;

/** Bound on the relative error of every S entry (and of merged Z). */
export const SUMS_RELATIVE_BOUND = 5 * UNIT_ROUNDOFF_F32;

/**
 * Bound on |tau_gpu - tau_f64| for a radius grid (radii ascending, as the spectrum uses).
 * Both paths fit the same x; only ln Z differs, by at most SUMS_RELATIVE_BOUND (+ its square).
 */
export function tauErrorBound(radii: ArrayLike<number>): number {
  const G = radii.length;
  if (G < 2) return 0;
  const D = radii[G - 1];
  let mean = 0;
  for (let g = 0; g < G; g++) mean += Math.log(radii[g] / D);
  mean /= G;
  let abs = 0;
  let sq = 0;
  for (let g = 0; g < G; g++) {
    const dx = Math.log(radii[g] / D) - mean;
    abs += Math.abs(dx);
    sq += dx * dx;
  }
  const dLnZ = -Math.log1p(-SUMS_RELATIVE_BOUND);
  return sq === 0 ? 0 : (dLnZ * abs) / sq;
}
