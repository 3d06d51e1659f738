import { InputError } from '../../proto/errors.js';

/** 10^0 … 10^22: every one exact in float64, so m / 10^k and m · 10^k round once (below). */
const POW10 = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));
/** Up to this a significand takes another digit exactly: 10·m + 9 < 2^53. */
const EXACT_LIMIT = 900719925474098;

const isDigit = (c: number) => c >= 48 && c <= 57;
const isBlank = (c: number) => c === 32 || c === 9 || c === 13 || c === 11 || c === 12;

/**
 * One number of a CSV edge list, bytes [start, end) of `bytes`, as the reference's loaders
 * read it (Python's `float`, which numpy.loadtxt and pandas follow): an optional sign, decimal
 * digits with an optional point and exponent, or inf / infinity / nan in any case. Everything
 * else — hex (`0x10`, which JavaScript's Number reads as 16), binary, underscores, an empty
 * field — is not a number: undefined. The value is the correctly rounded one, as Python's:
 * exact integer arithmetic when the significand is below 2^53 and the power of ten at most
 * 10^22 (then one division or multiplication of exact doubles rounds once), Number() otherwise.
 */
export function parseCsvNumberBytes(bytes: Uint8Array, start: number, end: number): number | undefined {
  let i = start;
  const negative = bytes[i] === 45;
  if (negative || bytes[i] === 43) i++;
  let m = 0;
  let digits = 0;
  let scale = 0;
  let exact = true;
  for (; i < end && isDigit(bytes[i]); i++, digits++) {
    if (m > EXACT_LIMIT) exact = false;
    m = m * 10 + bytes[i] - 48;
  }
  if (i < end && bytes[i] === 46) {
    for (i++; i < end && isDigit(bytes[i]); i++, digits++, scale++) {
      if (m > EXACT_LIMIT) exact = false;
      m = m * 10 + bytes[i] - 48;
    }
  }
  if (digits === 0) return special(bytes, start, end);
  if (i < end && (bytes[i] | 32) === 101) {
    i++;
    const minus = bytes[i] === 45;
    if (minus || bytes[i] === 43) i++;
    let e = 0;
    let eDigits = 0;
    for (; i < end && isDigit(bytes[i]); i++, eDigits++) e = Math.min(e * 10 + bytes[i] - 48, 1e6);
    if (eDigits === 0) return undefined;
    scale += minus ? e : -e;
  }
  if (i !== end) return undefined;
  if (exact && scale >= -22 && scale <= 22) {
    const v = scale >= 0 ? m / POW10[scale] : m * POW10[-scale];
    return negative ? -v : v;
  }
  return Number(latin1(bytes, start, end));
}

/** A Buffer view of the last byte array decoded: a line's fields share one, made once per read. */
let viewed: Uint8Array | undefined;
let view: Buffer | undefined;

function latin1(bytes: Uint8Array, start: number, end: number): string {
  if (bytes !== viewed) {
    view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    viewed = bytes;
  }
  return view!.toString('latin1', start, end);
}

/** inf, infinity or nan, any case, after an optional sign. */
function special(bytes: Uint8Array, start: number, end: number): number | undefined {
  const negative = bytes[start] === 45;
  const word = latin1(bytes, bytes[start] === 45 || bytes[start] === 43 ? start + 1 : start, end).toLowerCase();
  if (word === 'inf' || word === 'infinity') return negative ? -Infinity : Infinity;
  return word === 'nan' ? NaN : undefined;
}

const encoder = new TextEncoder();

/** parseCsvNumberBytes of a string (surrounding blanks are not part of a number). */
export function parseCsvNumber(field: string): number | undefined {
  const bytes = encoder.encode(field);
  return parseCsvNumberBytes(bytes, 0, bytes.length);
}

const FIELDS = ['src', 'dst', 'weight'] as const;

/** Bytes quoted for a one-line message: decoded, capped, control characters escaped. */
function quote(bytes: Uint8Array, start: number, end: number): string {
  const text = new TextDecoder().decode(bytes.subarray(start, Math.min(end, start + 320)));
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

/**
 * Parses line `lineNumber` (1-based) of a CSV edge list, bytes [start, end) without the line
 * break, as `src,dst,weight` into out[0..2]. Returns false for a blank line; anything else that
 * is not three numbers is an InputError naming the file and line — an empty field included (it
 * was once read as 0 and the edge silently dropped).
 */
export function parseCsvEdgeBytes(path: string, lineNumber: number, bytes: Uint8Array, start: number, end: number, out: Float64Array): boolean {
  let from = start;
  for (let f = 0; f < 3; f++) {
    let comma = from;
    while (comma < end && bytes[comma] !== 44) comma++;
    const last = f === 2;
    if (last ? comma < end : comma === end) {
      if (f === 0 && isBlankRange(bytes, start, end)) return false;
      throw new InputError(`${path}:${lineNumber}: expected three numbers "src,dst,weight", got ${quote(bytes, start, end)}`);
    }
    let a = from;
    let b = comma;
    while (a < b && isBlank(bytes[a])) a++;
    while (b > a && isBlank(bytes[b - 1])) b--;
    if (a === b) throw new InputError(`${path}:${lineNumber}: empty ${FIELDS[f]} field in ${quote(bytes, start, end)}`);
    const v = parseCsvNumberBytes(bytes, a, b);
    if (v === undefined) {
      throw new InputError(`${path}:${lineNumber}: ${FIELDS[f]} ${quote(bytes, a, b)} is not a decimal number (digits, an optional exponent, inf or nan) in ${quote(bytes, start, end)}`);
    }
    out[f] = v;
    from = comma + 1;
  }
  return true;
}

function isBlankRange(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (!isBlank(bytes[i])) return false;
  return true;
}

/** parseCsvEdgeBytes of a line given as a string. */
export function parseCsvEdgeLine(path: string, lineNumber: number, line: string, out: Float64Array): boolean {
  const bytes = encoder.encode(line);
  return parseCsvEdgeBytes(path, lineNumber, bytes, 0, bytes.length, out);
}

/** The first non-blank line may name the columns: it is a header when none of its fields is a number. */
export function isCsvHeaderLine(line: string): boolean {
  return line.split(',').every((field) => parseCsvNumber(field.trim()) === undefined);
}
