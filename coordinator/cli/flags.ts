import { readFile } from 'node:fs/promises';
import { InputError, UsageError } from '../../proto/errors.js';
import { bucketRangeProblem, DECIMALS, MAX_MIN_NEIGHBORS, MAX_Q_COUNT, MAX_SAMPLES, MAX_SHARD_MB, Q_ABS_MAX, quote } from '../../proto/limits.js';
import type { MfaParams } from '../../proto/shard.js';

/** Flag parsers: each validates before any work starts and names its flag in the message. */

export function parseNumber(flag: string, raw: string): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`${flag} expects a number, got ${quote(raw)}`);
  return v;
}

export function parseInteger(flag: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = parseNumber(flag, raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new UsageError(`${flag} expects an integer${max === Number.MAX_SAFE_INTEGER ? ` >= ${min}` : ` from ${min} to ${max}`}, got ${quote(raw)}`);
  }
  return v;
}

export function parseThreshold(flag: string, raw: string): number {
  const v = parseNumber(flag, raw);
  if (v <= 1) throw new UsageError(`${flag} must be greater than 1 (distances 1/|w| <= 1 are never kept), got ${raw}`);
  return v;
}

export function parseDecimals(flag: string, raw: string): number {
  return parseInteger(flag, raw, DECIMALS.min, DECIMALS.max);
}

/** Threshold and decimals together: T · 10^p must fit the kernel's int32 bucket ids (proto/limits.ts). */
export function checkBucketRange(threshold: number, decimals: number): void {
  const problem = bucketRangeProblem(threshold, decimals);
  if (problem) throw new UsageError(`--threshold ${threshold} --decimals ${decimals}: ${problem}`);
}

/** --shard-mb: positive, and no larger than a worker accepts. */
export function parseShardMb(raw: string): number {
  const v = parseNumber('--shard-mb', raw);
  if (!(v > 0 && v <= MAX_SHARD_MB)) throw new UsageError(`--shard-mb must be in (0, ${MAX_SHARD_MB}], got ${quote(raw)}`);
  return v;
}

function decimalsOf(s: string): number {
  const m = /\.(\d+)$/.exec(s.trim());
  return m ? m[1].length : 0;
}

/**
 * A q grid: `start:stop:step` (inclusive, like the reference's n/100 grid) or a comma list.
 * Grid points are computed as integers over a power of ten, so -3:3:0.1 gives exactly the
 * doubles n/10 — the same values the reference's q = n/100 produces.
 */
export function parseQGrid(raw: string): number[] {
  let q: number[];
  if (raw.includes(':')) {
    const parts = raw.split(':');
    if (parts.length !== 3) throw new UsageError(`--q expects start:stop:step or a comma list, got ${quote(raw)}`);
    const [a, b, s] = parts.map((p) => parseNumber('--q', p));
    if (s <= 0) throw new UsageError(`--q step must be positive, got ${parts[2]}`);
    if (b < a) throw new UsageError(`--q stop must not be below start, got ${quote(raw)}`);
    if (Math.max(Math.abs(a), Math.abs(b)) > Q_ABS_MAX) throw new UsageError(`--q values must lie within [-${Q_ABS_MAX}, ${Q_ABS_MAX}], got ${quote(raw)}`);
    const scale = 10 ** Math.min(20, Math.max(...parts.map(decimalsOf)));
    const [ia, ib, is] = [a, b, s].map((v) => Math.round(v * scale));
    // A step below the grid's resolution rounds to 0: an unbounded grid, refused like a long one.
    const count = is > 0 ? Math.floor((ib - ia) / is) + 1 : Infinity;
    if (count > MAX_Q_COUNT) throw new UsageError(`--q grid has ${count} points; at most ${MAX_Q_COUNT}`);
    q = Array.from({ length: count }, (_, k) => (ia + k * is) / scale);
  } else {
    const items = raw.split(',');
    if (items.length > MAX_Q_COUNT) throw new UsageError(`--q lists ${items.length} values; at most ${MAX_Q_COUNT}`);
    q = items.map((p) => parseNumber('--q', p));
    const big = q.find((v) => Math.abs(v) > Q_ABS_MAX);
    if (big !== undefined) throw new UsageError(`--q values must lie within [-${Q_ABS_MAX}, ${Q_ABS_MAX}], got ${big}`);
  }
  if (q.length < 2) throw new UsageError(`--q needs at least two values, got ${quote(raw)}`);
  for (let k = 1; k < q.length; k++) if (!(q[k] > q[k - 1])) throw new UsageError(`--q values must be strictly increasing, got ${quote(raw)}`);
  return q;
}

/** Sample indices: `0-9`, `0,3,5` or a mix such as `0-2,7`. */
export function parseSamples(raw: string): number[] {
  const out = new Set<number>();
  for (const piece of raw.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(piece);
    if (!m) throw new UsageError(`--samples expects indices like 0-9 or 0,3,5, got ${quote(raw)}`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new UsageError(`--samples range ${piece.trim()} is reversed`);
    if (b > 0xffffffff) throw new UsageError(`--samples indices are NumPy seeds and must be below 2^32`);
    // Counted before the loop: 0-4294967295 is four billion analyses, not a plan.
    if (out.size + (b - a + 1) > MAX_SAMPLES) throw new UsageError(`--samples names more than ${MAX_SAMPLES} samples`);
    for (let s = a; s <= b; s++) out.add(s);
  }
  return [...out];
}

export interface MfaFlagValues {
  threshold: string;
  decimals: string;
  minNeighbors: string;
  q: string;
}

export function mfaParams(o: MfaFlagValues): MfaParams {
  const threshold = parseThreshold('--threshold', o.threshold);
  const decimals = parseDecimals('--decimals', o.decimals);
  checkBucketRange(threshold, decimals);
  return { threshold, decimals, minNeighbors: parseInteger('--min-neighbors', o.minNeighbors, 0, MAX_MIN_NEIGHBORS), q: parseQGrid(o.q) };
}

/** A file a flag names (a PEM certificate or key); a missing one is an InputError naming the flag. */
export async function readPem(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new InputError(`${flag} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { cause: err });
  }
}

/** `--nats a,b`: the servers of one NATS cluster. */
export const serverList = (list: string) => list.split(',').map((s) => s.trim()).filter(Boolean);
