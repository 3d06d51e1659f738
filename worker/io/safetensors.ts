import { InputError, SafetensorsFormatError } from '../../proto/errors.js';
import { MAX_SAFETENSORS_HEADER_BYTES, quote, shown } from '../../proto/limits.js';
import { readRangesOf, type ByteSource } from './byte-source.js';
import { bytesPerElement, isFloatDType, type DType } from './dtype.js';
import { inLanes } from './in-lanes.js';
import type { WantedRange } from './ranged-read.js';
import { rowRanges } from './read-plan.js';

/**
 * Safetensors reader: 8 bytes (u64 LE header length), the JSON header, and then only the
 * rows a caller asks for. A 12B-parameter checkpoint is ~24-48 GB; sampling must not read it.
 * Layout: https://github.com/huggingface/safetensors#format
 */

export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /**
   * ABSOLUTE byte offsets in the file: 8 + headerLen + data_offsets[0|1]. For a strided
   * tensor `start` is element [0, 0, ...] and [start, end) the bytes its elements span.
   */
  start: number;
  end: number;
  source: ByteSource;
  /**
   * Element strides, only for tensors that are not C-contiguous (a torch view or transpose
   * saved in a .bin). Absent means row-major contiguous, which is all safetensors can hold,
   * so code that reads [start, end) as row-major stays right wherever this is absent.
   */
  strides?: number[];
}

/** True when the elements lie row-major in [start, end) (always, without strides). */
export function isContiguous(t: Pick<TensorInfo, 'shape' | 'strides'>): boolean {
  if (!t.strides) return true;
  let expect = 1;
  for (let d = t.shape.length - 1; d >= 0; d--) {
    // A dimension of size 1 (or any zero-size tensor) never steps, whatever its stride.
    if (t.shape[d] === 0) return true;
    if (t.shape[d] !== 1 && t.strides[d] !== expect) return false;
    expect *= t.shape[d];
  }
  return true;
}

export interface SafetensorsFile {
  source: ByteSource;
  tensors: Map<string, TensorInfo>;
  metadata?: Record<string, string>;
}

/** Same cap as the reference Rust reader (MAX_HEADER_SIZE): a corrupt length must not make us allocate GBs. */
const MAX_HEADER_BYTES = MAX_SAFETENSORS_HEADER_BYTES;

interface Entry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Checks one header entry on its own; `fail` prefixes the file name. */
function validateTensorEntry(name: string, raw: unknown, fail: (msg: string) => never): Entry {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`tensor ${shown(name)}: header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string') fail(`tensor ${shown(name)}: missing or invalid dtype`);
  // More dimensions than any framework allows is not a shape (and would not fit one line).
  if (!Array.isArray(shape) || shape.length > 64 || !shape.every(isCount)) fail(`tensor ${shown(name)}: missing or invalid shape`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    fail(`tensor ${shown(name)}: missing or invalid data_offsets`);
  }
  const size = bytesPerElement(dtype);
  if (size === undefined) fail(`tensor ${shown(name)}: unknown dtype ${quote(dtype as string)}`);
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(`tensor ${shown(name)}: data_offsets [${begin}, ${end}] begin after end`);
  const expected = (shape as number[]).reduce((p, d) => p * d, 1) * size;
  if (!Number.isSafeInteger(expected) || expected !== end - begin) {
    fail(`tensor ${shown(name)}: shape [${shape.join(', ')}] × ${dtype} needs ${expected} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/**
 * Overlaps, out-of-range offsets and truncation, checked on all entries at once.
 * A header whose tensors tile [0, maxEnd) without gaps but whose file stops early was cut
 * off in transfer ("truncated"); otherwise an entry past the end is a bad header.
 * The tensors must cover the data section exactly, as the reference reader requires
 * (safetensors `Metadata::validate`): a gap or bytes after the last tensor are refused.
 */
function validateLayout(entries: Entry[], dataBytes: number, fail: (msg: string) => never): void {
  const sorted = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin || a.end - b.end);
  let reach = 0;
  let owner: Entry | undefined;
  let gap: { after?: Entry; begin: number; end: number } | undefined;
  for (const e of sorted) {
    if (owner && e.begin < reach) {
      fail(`tensors ${shown(owner.name)} [${owner.begin}, ${owner.end}] and ${shown(e.name)} [${e.begin}, ${e.end}] overlap`);
    }
    if (e.begin > reach) gap ??= { after: owner, begin: reach, end: e.begin };
    reach = e.end;
    owner = e;
  }
  if (reach > dataBytes) {
    if (!gap) fail(`truncated: the header describes ${reach} data bytes but only ${dataBytes} follow it`);
    const bad = sorted.find((e) => e.end > dataBytes)!;
    fail(`tensor ${shown(bad.name)}: data_offsets [${bad.begin}, ${bad.end}] lie outside the data section (${dataBytes} bytes)`);
  }
  if (gap) fail(`data bytes [${gap.begin}, ${gap.end}) ${gap.after ? `after tensor ${shown(gap.after.name)}` : 'at the start of the data section'} belong to no tensor`);
  if (reach < dataBytes) fail(`${dataBytes - reach} bytes after the last tensor's data (the data section is ${dataBytes} bytes, the tensors cover ${reach})`);
}

export async function readSafetensorsHeader(source: ByteSource): Promise<SafetensorsFile> {
  const fail = (msg: string): never => {
    throw new SafetensorsFormatError(`${source.name}: ${msg}`);
  };
  if (source.size < 8) fail('not a safetensors file (too short)');
  const lenBytes = await source.read(0, 8);
  const big = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  // A text or binary file that is not safetensors usually lands here, with a huge "length".
  if (big > BigInt(source.size - 8)) fail(`not a safetensors file (header length ${big} exceeds file size ${source.size})`);
  const headerLen = Number(big);
  if (headerLen > MAX_HEADER_BYTES) fail(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte cap`);

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await source.read(8, 8 + headerLen)));
  } catch (err) {
    if (err instanceof InputError) throw err; // a read error, not a parse error
    header = undefined;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail('not a safetensors file (header is not valid JSON)');
  }

  let metadata: Record<string, string> | undefined;
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = readMetadata(raw, fail);
      continue;
    }
    entries.push(validateTensorEntry(name, raw, fail));
  }
  const dataStart = 8 + headerLen;
  validateLayout(entries, source.size - dataStart, fail);

  const tensors = new Map<string, TensorInfo>();
  for (const e of entries) {
    tensors.set(e.name, { name: e.name, dtype: e.dtype, shape: e.shape, start: dataStart + e.begin, end: dataStart + e.end, source });
  }
  return metadata === undefined ? { source, tensors } : { source, tensors, metadata };
}

function readMetadata(raw: unknown, fail: (msg: string) => never): Record<string, string> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('__metadata__ is not an object');
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== 'string') fail(`__metadata__ value for ${quote(k)} is not a string`);
    out[k] = v as string;
  }
  return out;
}

/** Bytes of one row of a 2-D tensor; rejects other ranks. */
export function rowBytesOf(t: TensorInfo): number {
  if (t.shape.length !== 2) {
    throw new InputError(`${t.source.name}: tensor ${t.name} is not 2-D (shape [${t.shape.join(', ')}])`);
  }
  return t.shape[1] * bytesPerElement(t.dtype)!;
}

export function checkRow(t: TensorInfo, r: number, allowEnd: boolean): void {
  const max = allowEnd ? t.shape[0] : t.shape[0] - 1;
  if (!Number.isSafeInteger(r) || r < 0 || r > max) {
    throw new RangeError(`tensor ${t.name}: row ${r} outside [0, ${t.shape[0]})`);
  }
}

/** Raw bytes of rows [rowStart, rowEnd), row-major; one range read unless strided. */
export async function readRows(t: TensorInfo, rowStart: number, rowEnd: number): Promise<Uint8Array> {
  const rowBytes = rowBytesOf(t);
  checkRow(t, rowStart, true);
  checkRow(t, rowEnd, true);
  if (rowStart > rowEnd) throw new RangeError(`tensor ${t.name}: rows [${rowStart}, ${rowEnd}) run backwards`);
  if (!isContiguous(t)) {
    const rows = Array.from({ length: rowEnd - rowStart }, (_, k) => rowStart + k);
    const got = await readStridedRows(t, rows);
    const out = new Uint8Array(rows.length * rowBytes);
    rows.forEach((r, k) => out.set(got.get(r)!, k * rowBytes));
    return out;
  }
  return t.source.read(t.start + rowStart * rowBytes, t.start + rowEnd * rowBytes);
}

/** Concurrent range reads per readRowList call. */
const READS_IN_FLIGHT = 16;

const distinctSorted = (rows: ArrayLike<number>) => Float64Array.from(new Set(Array.from(rows))).sort();

const gapOf = (s: ByteSource) => Math.max(0, s.coalesceGapBytes ?? 0);

/** Wanted ranges longer than this are cut, so one request's retry never redoes more. */
export const MAX_WANTED_PIECE = 16 << 20;

/**
 * Raw bytes of each distinct listed row. Adjacent rows form one wanted range and the source's
 * read planner decides how many requests to make of them (read-plan.ts): exact rows on a
 * link where round trips are cheap, rows merged across gaps where they are not. No row is
 * read twice, and bytesRead counts the wanted bytes only (the ≤3% sampling budget).
 * The rows share one buffer (subarray views, in row order): copy before mutating.
 * A strided tensor (a saved transpose) is gathered element by element, see readStridedRows.
 */
export async function readRowList(t: TensorInfo, rows: ArrayLike<number>): Promise<Map<number, Uint8Array>> {
  const rowBytes = rowBytesOf(t);
  for (let i = 0; i < rows.length; i++) checkRow(t, rows[i], false);
  if (!isContiguous(t)) return readStridedRows(t, Array.from(rows));
  const sorted = distinctSorted(rows);
  const arena = new Uint8Array(sorted.length * rowBytes);
  const { starts, ends } = rowRanges(t.start, rowBytes, sorted, MAX_WANTED_PIECE);
  const wanted: WantedRange[] = [];
  for (let k = 0, at = 0; k < starts.length; k++) {
    const n = ends[k] - starts[k];
    wanted.push({ start: starts[k], end: ends[k], into: arena.subarray(at, at + n) });
    at += n;
  }
  if (rowBytes > 0) await readRangesOf(t.source, wanted);
  const out = new Map<number, Uint8Array>();
  for (let k = 0; k < sorted.length; k++) out.set(sorted[k], arena.subarray(k * rowBytes, (k + 1) * rowBytes));
  return out;
}

/**
 * Rows of a 2-D strided tensor, each gathered into its own row-major buffer. A row's
 * elements are r*s0 + c*s1; each row's covering element range is computed, overlapping or
 * touching ranges are merged (for a transpose they all overlap, so the covering range of
 * the wanted rows is read once) and every range is read once, then gathered.
 */
async function readStridedRows(t: TensorInfo, rows: number[]): Promise<Map<number, Uint8Array>> {
  const e = bytesPerElement(t.dtype)!;
  const [s0, s1] = t.strides!;
  const cols = t.shape[1];
  const out = new Map<number, Uint8Array>();
  const sorted = distinctSorted(rows);
  if (cols === 0) {
    for (const r of sorted) out.set(r, new Uint8Array(0));
    return out;
  }
  const lo = (r: number) => r * s0 + Math.min(0, (cols - 1) * s1);
  const hi = (r: number) => r * s0 + Math.max(0, (cols - 1) * s1) + 1;
  const gap = Math.floor(gapOf(t.source) / e);
  const byLo = Array.from(sorted).sort((a, b) => lo(a) - lo(b));
  const runs: Array<{ lo: number; hi: number; rows: number[] }> = [];
  for (const r of byLo) {
    const last = runs[runs.length - 1];
    if (last && lo(r) <= last.hi + gap) {
      last.hi = Math.max(last.hi, hi(r));
      last.rows.push(r);
    } else {
      runs.push({ lo: lo(r), hi: hi(r), rows: [r] });
    }
  }
  await inLanes(runs.length, READS_IN_FLIGHT, async (n) => {
    const run = runs[n];
    const bytes = await t.source.read(t.start + run.lo * e, t.start + run.hi * e);
    for (const r of run.rows) {
      const row = new Uint8Array(cols * e);
      const base = (r * s0 - run.lo) * e;
      if (s1 === 1) row.set(bytes.subarray(base, base + cols * e));
      else for (let c = 0; c < cols; c++) row.set(bytes.subarray(base + c * s1 * e, base + (c * s1 + 1) * e), c * e);
      out.set(r, row);
    }
  });
  return out;
}

export function requireFloatTensor(t: TensorInfo): DType {
  if (isFloatDType(t.dtype)) return t.dtype;
  throw new InputError(`${t.source.name}: tensor ${t.name} has unsupported dtype ${t.dtype} (supported: F32, F16, BF16, F64)`);
}
