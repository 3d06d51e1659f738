import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-write.js';
import type { DType } from './dtype.js';

/**
 * Writes real safetensors checkpoints for the demo, benchmarks and tests. Streams tensor
 * by tensor: benchmark checkpoints are hundreds of MB and must not exist twice in memory.
 */

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  /** Values; for F16/BF16 a Uint16Array is taken as raw bits, written unchanged. */
  data: Float64Array | Float32Array | Uint16Array;
}

// Exact powers of two 2^-1022..2^1023, built from their bits (Math.pow is not specified to
// be exact) once, so encoding a 100M-element benchmark tensor stays a table lookup.
const POW2 = (() => {
  const bits = new BigUint64Array(2046);
  for (let k = -1022; k <= 1023; k++) bits[k + 1022] = BigInt(k + 1023) << 52n;
  return new Float64Array(bits.buffer);
})();
const pow2 = (k: number): number => POW2[k + 1022];
// Reads a double's biased exponent without DataView (host order; see dtype.ts HOST_LE).
const expScratch = new Float64Array(1);
const expWords = new Uint32Array(expScratch.buffer);
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f; // exact: the fraction of a double is representable
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/**
 * Rounds a double to a binary format with `mantBits` stored mantissa bits and exponent bias
 * `bias`, to nearest, ties to even, in one step (going through float32 first would round
 * twice). Overflow becomes inf, tiny values become subnormals or signed zero.
 */
function encode(x: number, mantBits: number, bias: number, quietNaN: number): number {
  const expAllOnes = 2 * bias + 1;
  const infBits = expAllOnes << mantBits;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0; // both formats are 16 bits wide
  if (Number.isNaN(x)) return quietNaN;
  const a = Math.abs(x);
  if (a === Infinity) return sign | infBits;
  const minNormalExp = 1 - bias;
  if (a < pow2(minNormalExp)) {
    // Subnormal: a multiple of 2^(minNormalExp - mantBits). A round up to 2^mantBits is
    // exactly the smallest normal's bit pattern.
    return sign | roundHalfEven(a * pow2(mantBits - minNormalExp));
  }
  expScratch[0] = a;
  const e = ((expWords[HI] >>> 20) & 0x7ff) - 1023; // a >= 2^-126 is a normal double
  if (e + bias >= expAllOnes) return sign | infBits;
  const r = roundHalfEven(a * pow2(mantBits - e)); // in [2^mantBits, 2^(mantBits+1)]
  // r === 2^(mantBits+1) carries into the exponent, which is the correct result (maybe inf).
  return sign | Math.min(((e + bias) << mantBits) + (r - (1 << mantBits)), infBits);
}

/** IEEE binary16 bits of x: 65520 and above become inf, below 2^-14 subnormal. */
export function float64ToF16Bits(x: number): number {
  return encode(x, 10, 15, 0x7e00);
}

/** bfloat16 bits of x, rounded to nearest even like torch's `.to(torch.bfloat16)`. */
export function float64ToBF16Bits(x: number): number {
  return encode(x, 7, 127, 0x7fc0);
}

const CHUNK = 1 << 20; // elements converted per write: bounds the extra memory to a few MB

function* tensorBytes(t: TensorToWrite): Generator<Uint8Array> {
  const { dtype, data } = t;
  const asBytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const same =
    (dtype === 'F64' && data instanceof Float64Array) ||
    (dtype === 'F32' && data instanceof Float32Array) ||
    ((dtype === 'F16' || dtype === 'BF16') && data instanceof Uint16Array);
  if (same) {
    yield asBytes(data);
    return;
  }
  if (data instanceof Uint16Array) {
    throw new TypeError(`writeSafetensors: tensor ${t.name}: Uint16Array data is raw F16/BF16 bits, not ${dtype} values`);
  }
  for (let i = 0; i < data.length; i += CHUNK) {
    const part = data.subarray(i, Math.min(i + CHUNK, data.length));
    if (dtype === 'F64') yield asBytes(Float64Array.from(part));
    else if (dtype === 'F32') yield asBytes(Float32Array.from(part)); // Math.fround: nearest even
    else {
      const toBits = dtype === 'F16' ? float64ToF16Bits : float64ToBF16Bits;
      const bits = new Uint16Array(part.length);
      for (let k = 0; k < part.length; k++) bits[k] = toBits(part[k]);
      yield asBytes(bits);
    }
  }
}

const ELEMENT_BYTES: Record<DType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2 };

/** The header the reference writer produces: JSON, space-padded to a multiple of 8. */
function headerBytes(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const count = t.shape.reduce((p, d) => p * d, 1);
    if (count !== t.data.length) {
      throw new RangeError(`writeSafetensors: tensor ${t.name}: shape [${t.shape.join(', ')}] has ${count} elements, data has ${t.data.length}`);
    }
    const bytes = count * ELEMENT_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = JSON.stringify(header);
  // Padding keeps the data section 8-byte aligned, so readers can map it as typed arrays.
  const body = new TextEncoder().encode(json + ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8));
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
  out.set(body, 8);
  return out;
}

/** write() may write less than asked (large buffers, some file systems): loop until done. */
async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    done += (await fh.write(bytes, done, bytes.length - done)).bytesWritten;
  }
}

/** Writes `path` atomically (via `path.tmp`): readers never see a half-written checkpoint. */
export async function writeSafetensors(path: string, tensors: TensorToWrite[], metadata?: Record<string, string>): Promise<void> {
  const head = headerBytes(tensors, metadata);
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await writeAll(fh, head);
    for (const t of tensors) for (const chunk of tensorBytes(t)) await writeAll(fh, chunk);
    await fh.close();
    await rename(tmp, path);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}

/** config.json beside the weights: the layout (GPT-NeoX, Llama, GPT-2…) is chosen from it. */
export async function writeConfigJson(dir: string, config: Record<string, unknown>): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}
