/**
 * The allowed range of every parameter and size, written once: the CLI's flag parsers, the
 * wire decoder (a worker must refuse what the CLI would refuse, or a hand-made task could
 * make it allocate gigabytes) and the readers all check against these. Each bound says why.
 */

/** decimals p: radii are rounded to p decimals; 10^6 buckets per unit of distance is plenty. */
export const DECIMALS = { min: 0, max: 6 } as const;

/**
 * Bucket ids rint(d · 10^p) for d <= T live in Int32Arrays on every path (box masses, present
 * buckets, results on the wire), so T · 10^p must stay below 2^31: above it they wrapped to
 * negative radii and NaN spectra.
 */
export const MAX_BUCKET = 2 ** 31 - 1;

/** q grid: at most this many values, each of magnitude at most Q_ABS_MAX. */
export const MAX_Q_COUNT = 10_000;
/** Beyond |q| = 100, n^q overflows float64 for masses n of a few thousand: NaN, not a spectrum. */
export const Q_ABS_MAX = 100;

/** --min-neighbors: box-mass counts are Uint32. */
export const MAX_MIN_NEIGHBORS = 2 ** 32 - 1;

/** A full-NIN shard's weight bytes (--shard-mb, and what a worker accepts): 4 GiB. */
export const MAX_SHARD_WEIGHT_BYTES = 2 ** 32;
export const MAX_SHARD_MB = MAX_SHARD_WEIGHT_BYTES / (1 << 20);
/** Row counts and matrix widths: tensor dimensions of any real model are far below 2^31. */
export const MAX_DIMENSION = 2 ** 31 - 1;
/** Parts of one stacked matrix (q, k, v or gate, up): a handful; 64 leaves room. */
export const MAX_MATRIX_PARTS = 64;
/** Edge-list shards: at most this many values between two weights of a node (rows [src, dst, w]). */
export const MAX_GROUP_STRIDE = 1 << 16;

/** Samples of one analyze/emergence run (--samples): each is a separate spectrum. */
export const MAX_SAMPLES = 100_000;

/** Transformer blocks in a config.json: the deepest published models have a few hundred. */
export const MAX_LAYERS = 10_000;

/** One gRPC or NATS message (--max-message-mb): grpc-js's own hard limit is 2 GiB - 1. */
export const MAX_MESSAGE_MB = 2047;

/** Readers: a safetensors JSON header (the reference Rust reader's MAX_HEADER_SIZE). */
export const MAX_SAFETENSORS_HEADER_BYTES = 100_000_000;
/** Readers: a torch.save data.pkl is a few KB per thousand tensors. */
export const MAX_PICKLE_BYTES = 256 << 20;
/** Readers: config.json and index JSON files are kilobytes; 64 MB is already absurd. */
export const MAX_JSON_FILE_BYTES = 64 << 20;

/** Quoted input in an error message stays this short, so every error is one readable line. */
export const MAX_QUOTED_CHARS = 80;

/**
 * `s` as a JSON string literal (control characters escaped, so it cannot break the line), cut
 * to MAX_QUOTED_CHARS with a note of its length.
 */
export function quote(s: string): string {
  return s.length <= MAX_QUOTED_CHARS ? JSON.stringify(s) : `${JSON.stringify(s.slice(0, MAX_QUOTED_CHARS))}… (${s.length} characters)`;
}

/** Why threshold/decimals are out of range, or undefined when they are fine. */
export function bucketRangeProblem(threshold: number, decimals: number): string | undefined {
  if (!Number.isFinite(threshold) || !(threshold > 1)) return `threshold must be a finite number greater than 1 (distances 1/|w| <= 1 are never kept), got ${threshold}`;
  if (!Number.isInteger(decimals) || decimals < DECIMALS.min || decimals > DECIMALS.max) return `decimals must be an integer from ${DECIMALS.min} to ${DECIMALS.max}, got ${decimals}`;
  // rint(T · 10^p) as buckets.ts computes it, rounding up to be safe at the boundary.
  if (Math.ceil(threshold * 10 ** decimals) > MAX_BUCKET) {
    return `threshold ${threshold} with ${decimals} decimals gives radii up to ${threshold} × 10^${decimals}, beyond the 2^31 - 1 buckets the kernel counts in; lower the threshold below ${Math.floor(MAX_BUCKET / 10 ** decimals)} or use fewer decimals`;
  }
  return undefined;
}

/** Why a q grid is out of range, or undefined. */
export function qGridProblem(q: ArrayLike<number>): string | undefined {
  if (q.length === 0) return 'q grid is empty';
  if (q.length > MAX_Q_COUNT) return `q grid has ${q.length} values; at most ${MAX_Q_COUNT}`;
  for (let k = 0; k < q.length; k++) {
    if (!Number.isFinite(q[k]) || Math.abs(q[k]) > Q_ABS_MAX) return `q values must be finite and within [-${Q_ABS_MAX}, ${Q_ABS_MAX}], got ${q[k]}`;
    if (k > 0 && !(q[k] > q[k - 1])) return `q values must be strictly increasing, got ${q[k - 1]} then ${q[k]}`;
  }
  return undefined;
}

/** A name from an input file for a message: as is when plain (a tensor or module name), else quote()d. */
export function shown(name: string): string {
  return /^[\w.\-/]{1,80}$/.test(name) ? name : quote(name);
}
