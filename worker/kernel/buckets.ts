/**
 * Distance → integer bucket, shared by every path. SPEC §3: d = 1/|w| in float64, kept when
 * 1 < d <= T (unrounded), bucket b = rint(d * 10^p) with rint rounding half to even
 * (NumPy's round; Math.round rounds half up and would move ties).
 */
export interface BucketParams {
  threshold: number;
  decimals: number;
}

/** Round half to even, as NumPy's `rint`. */
export function rint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function bucketScale(decimals: number): number {
  return 10 ** decimals;
}

/** The fixed bucket grid of SPEC §5: [10^p, rint(T * 10^p)]. */
export function bucketRange(p: BucketParams): { lo: number; hi: number } {
  const scale = bucketScale(p.decimals);
  return { lo: scale, hi: rint(p.threshold * scale) };
}

/** Codes of the dense per-node histogram used by the full-matrix path. */
export const CODE_ZERO = 0; // w == 0: not an edge
export const CODE_NONFINITE = 1; // NaN or ±Inf: skipped and counted
export const CODE_OUTSIDE = 2; // an edge whose distance is not in (1, T]
export const CODE_FIRST_BUCKET = 3; // code = CODE_FIRST_BUCKET + (b - lo)

/** Histogram code of one weight. */
export function weightCode(w: number, threshold: number, scale: number, lo: number): number {
  if (w === 0) return CODE_ZERO;
  if (!Number.isFinite(w)) return CODE_NONFINITE;
  const d = 1 / Math.abs(w);
  if (d > 1 && d <= threshold) return CODE_FIRST_BUCKET + rint(d * scale) - lo;
  return CODE_OUTSIDE;
}

const codeTables = new Map<string, Uint32Array>();

/**
 * A 16-bit weight has only 65,536 bit patterns, so its code is a table lookup: the full-NIN
 * hot loop then does one load and one increment per edge.
 */
export function codeTable16(decode: (bits: number) => number, kind: string, p: BucketParams): Uint32Array {
  const key = `${kind}:${p.threshold}:${p.decimals}`;
  let table = codeTables.get(key);
  if (!table) {
    const scale = bucketScale(p.decimals);
    const { lo } = bucketRange(p);
    table = new Uint32Array(65536);
    for (let bits = 0; bits < 65536; bits++) table[bits] = weightCode(decode(bits), p.threshold, scale, lo);
    codeTables.set(key, table);
  }
  return table;
}
