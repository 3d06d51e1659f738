import { readFile } from 'node:fs/promises';
import { InputError, UsageError } from '../../proto/errors.js';
import type { MfaParams } from '../../proto/shard.js';

/** Flag parsers: each validates before any work starts and names its flag in the message. */

export function parseNumber(flag: string, raw: string): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`${flag} expects a number, got "${raw}"`);
  return v;
}

export function parseInteger(flag: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = parseNumber(flag, raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new UsageError(`${flag} expects an integer${max === Number.MAX_SAFE_INTEGER ? ` >= ${min}` : ` from ${min} to ${max}`}, got "${raw}"`);
  }
  return v;
}

export function parseThreshold(flag: string, raw: string): number {
  const v = parseNumber(flag, raw);
  if (v <= 1) throw new UsageError(`${flag} must be greater than 1 (distances 1/|w| <= 1 are never kept), got ${raw}`);
  return v;
}

export function parseDecimals(flag: string, raw: string): number {
  return parseInteger(flag, raw, 0, 6);
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
    if (parts.length !== 3) throw new UsageError(`--q expects start:stop:step or a comma list, got "${raw}"`);
    const [a, b, s] = parts.map((p) => parseNumber('--q', p));
    if (s <= 0) throw new UsageError(`--q step must be positive, got ${parts[2]}`);
    if (b < a) throw new UsageError(`--q stop must not be below start, got "${raw}"`);
    const scale = 10 ** Math.max(...parts.map(decimalsOf));
    const [ia, ib, is] = [a, b, s].map((v) => Math.round(v * scale));
    const count = Math.floor((ib - ia) / is) + 1;
    if (count > 10000) throw new UsageError(`--q grid has ${count} points; at most 10000`);
    q = Array.from({ length: count }, (_, k) => (ia + k * is) / scale);
  } else {
    q = raw.split(',').map((p) => parseNumber('--q', p));
  }
  if (q.length < 2) throw new UsageError(`--q needs at least two values, got "${raw}"`);
  for (let k = 1; k < q.length; k++) if (!(q[k] > q[k - 1])) throw new UsageError(`--q values must be strictly increasing, got "${raw}"`);
  return q;
}

/** Sample indices: `0-9`, `0,3,5` or a mix such as `0-2,7`. */
export function parseSamples(raw: string): number[] {
  const out: number[] = [];
  for (const piece of raw.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(piece);
    if (!m) throw new UsageError(`--samples expects indices like 0-9 or 0,3,5, got "${raw}"`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new UsageError(`--samples range ${piece.trim()} is reversed`);
    if (b > 0xffffffff) throw new UsageError(`--samples indices are NumPy seeds and must be below 2^32`);
    for (let s = a; s <= b; s++) if (!out.includes(s)) out.push(s);
  }
  return out;
}

export interface MfaFlagValues {
  threshold: string;
  decimals: string;
  minNeighbors: string;
  q: string;
}

export function mfaParams(o: MfaFlagValues): MfaParams {
  return {
    threshold: parseThreshold('--threshold', o.threshold),
    decimals: parseDecimals('--decimals', o.decimals),
    minNeighbors: parseInteger('--min-neighbors', o.minNeighbors, 0),
    q: parseQGrid(o.q),
  };
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
