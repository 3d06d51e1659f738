/**
 * Safetensors element types and exact decoding of the float ones to float64.
 * Every decoded weight is the exact value stored in the file (f16/bf16/f32 all embed in
 * f64), so results do not depend on the dtype a checkpoint happened to be saved in.
 */

/** The float dtypes we can analyse. */
export type DType = 'F64' | 'F32' | 'F16' | 'BF16';

/**
 * Byte size of every dtype the safetensors format defines. Used to validate headers even
 * for tensors we never decode (a wrong length in an int tensor still means a broken file).
 * A Map, not an object literal, so names like "constructor" are not found on a prototype.
 */
const DTYPE_BYTES: ReadonlyMap<string, number> = new Map([
  ['BOOL', 1],
  ['U8', 1],
  ['I8', 1],
  ['F8_E4M3', 1],
  ['F8_E5M2', 1],
  ['I16', 2],
  ['U16', 2],
  ['F16', 2],
  ['BF16', 2],
  ['I32', 4],
  ['U32', 4],
  ['F32', 4],
  ['I64', 8],
  ['U64', 8],
  ['F64', 8],
]);

export function bytesPerElement(dtype: string): number | undefined {
  return DTYPE_BYTES.get(dtype);
}

export function isFloatDType(d: string): d is DType {
  return d === 'F64' || d === 'F32' || d === 'F16' || d === 'BF16';
}

/** IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
export function f16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

// One scratch word shared by bf16BitsToNumber: bf16 is the top half of a float32.
const scratchU32 = new Uint32Array(1);
const scratchF32 = new Float32Array(scratchU32.buffer);

export function bf16BitsToNumber(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0];
}

// Typed-array views read in host byte order; safetensors is little-endian. Every platform
// Node ships on is little-endian, but a big-endian host falls back to DataView reads.
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const tables16 = new Map<'F16' | 'BF16', Float64Array>();
/**
 * Every value of a 16-bit float dtype by its bit pattern: 512 KiB, built on first use only
 * (most checkpoints are F32 or BF16), then a decode is one load.
 */
export function table16(dtype: 'F16' | 'BF16'): Float64Array {
  let table = tables16.get(dtype);
  if (!table) {
    table = new Float64Array(65536);
    const decode = dtype === 'F16' ? f16BitsToNumber : bf16BitsToNumber;
    for (let b = 0; b < 65536; b++) table[b] = decode(b);
    tables16.set(dtype, table);
  }
  return table;
}

/** Typed-array views need byteOffset % size === 0; rows cut from a file buffer may not be. */
function aligned(bytes: Uint8Array, size: number): Uint8Array {
  return bytes.byteOffset % size === 0 ? bytes : bytes.slice();
}

/** Decodes little-endian `dtype` elements to float64, exactly. */
export function decodeFloats(dtype: DType, bytes: Uint8Array): Float64Array {
  const size = dtype === 'F64' ? 8 : dtype === 'F32' ? 4 : 2;
  if (bytes.length % size !== 0) {
    throw new RangeError(`decodeFloats: ${bytes.length} bytes is not a whole number of ${dtype} elements`);
  }
  const n = bytes.length / size;
  const out = new Float64Array(n);
  if (!HOST_LE) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    for (let i = 0; i < n; i++) {
      if (dtype === 'F64') out[i] = view.getFloat64(8 * i, true);
      else if (dtype === 'F32') out[i] = view.getFloat32(4 * i, true);
      else if (dtype === 'F16') out[i] = f16BitsToNumber(view.getUint16(2 * i, true));
      else out[i] = bf16BitsToNumber(view.getUint16(2 * i, true));
    }
    return out;
  }
  const a = aligned(bytes, size);
  if (dtype === 'F64') {
    out.set(new Float64Array(a.buffer, a.byteOffset, n));
  } else if (dtype === 'F32') {
    out.set(new Float32Array(a.buffer, a.byteOffset, n));
  } else if (dtype === 'F16') {
    const table = table16('F16');
    const u16 = new Uint16Array(a.buffer, a.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = table[u16[i]];
  } else {
    // BF16 is a float32 with the low 16 mantissa bits dropped: widen, then view as f32.
    const u16 = new Uint16Array(a.buffer, a.byteOffset, n);
    const u32 = new Uint32Array(n);
    for (let i = 0; i < n; i++) u32[i] = u16[i] << 16;
    out.set(new Float32Array(u32.buffer));
  }
  return out;
}

/** Stored elements as typed values: 16-bit patterns with the table that decodes them, or float32/float64 as they are. */
export interface StoredValues {
  values: Uint16Array | Float32Array | Float64Array;
  /** For F16/BF16: value = table[values[i]]. */
  table: Float64Array | null;
}

/**
 * A view of little-endian `dtype` elements for hot loops that decode a few of many (a sampled
 * NIN uses 32 columns of a 1024-wide row): no copy, no per-element closure.
 */
export function storedValues(dtype: DType, bytes: Uint8Array): StoredValues {
  if (!HOST_LE) return { values: decodeFloats(dtype, bytes), table: null };
  const size = dtype === 'F64' ? 8 : dtype === 'F32' ? 4 : 2;
  const a = aligned(bytes, size);
  const n = a.length / size;
  if (dtype === 'F64') return { values: new Float64Array(a.buffer, a.byteOffset, n), table: null };
  if (dtype === 'F32') return { values: new Float32Array(a.buffer, a.byteOffset, n), table: null };
  return { values: new Uint16Array(a.buffer, a.byteOffset, n), table: table16(dtype) };
}
