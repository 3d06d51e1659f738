import type { MatrixPart, MfaParams } from '../proto/shard.js';
import { FileByteSource, type ByteSource } from './io/byte-source.js';
import { bf16BitsToNumber, f16BitsToNumber } from './io/dtype.js';
import { CODE_FIRST_BUCKET, bucketRange, bucketScale, codeTable16, weightCode } from './kernel/buckets.js';

/** Bytes per read while streaming a matrix: large enough to amortise, small enough to stay flat. */
const BLOCK_BYTES = 4 << 20;

const BYTES: Record<MatrixPart['dtype'], number> = { F64: 8, F32: 4, F16: 2, BF16: 2 };

/**
 * Adds a block of raw weights to the node-major code histogram. `nRows` × `width` weights;
 * with `perColumn` weight (r, c) belongs to node c (a Linear [out, in] block), otherwise to
 * node firstNode + r (a Conv1D [in, out] block). 16-bit weights go through a 65,536-entry
 * code table; wider ones through weightCode. Plain nested loops: this is the hot path.
 */
type Coder = (raw: Uint8Array, nRows: number, width: number, perColumn: boolean, firstNode: number, hist: Uint32Array, nc: number) => void;

function coderFor(dtype: MatrixPart['dtype'], p: MfaParams): Coder {
  const scale = bucketScale(p.decimals);
  const { lo } = bucketRange(p);
  const T = p.threshold;
  if (dtype === 'F16' || dtype === 'BF16') {
    const table = codeTable16(dtype === 'F16' ? f16BitsToNumber : bf16BitsToNumber, dtype, p);
    return (raw, nRows, width, perColumn, firstNode, hist, nc) => {
      const bits = new Uint16Array(raw.buffer, raw.byteOffset, nRows * width);
      let j = 0;
      for (let r = 0; r < nRows; r++) {
        let h = perColumn ? 0 : (firstNode + r) * nc;
        const step = perColumn ? nc : 0;
        for (let c = 0; c < width; c++, j++, h += step) hist[h + table[bits[j]]]++;
      }
    };
  }
  return (raw, nRows, width, perColumn, firstNode, hist, nc) => {
    const n = nRows * width;
    const v = dtype === 'F32' ? new Float32Array(raw.buffer, raw.byteOffset, n) : new Float64Array(raw.buffer, raw.byteOffset, n);
    let j = 0;
    for (let r = 0; r < nRows; r++) {
      let h = perColumn ? 0 : (firstNode + r) * nc;
      const step = perColumn ? nc : 0;
      for (let c = 0; c < width; c++, j++, h += step) hist[h + weightCode(v[j], T, scale, lo)]++;
    }
  };
}

/** Reads rows [r0, r1) of a row-major [rows, width] tensor, only columns [c0, c1). */
async function readBlock(src: ByteSource, part: MatrixPart, width: number, r0: number, r1: number, c0: number, c1: number): Promise<Uint8Array> {
  const eb = BYTES[part.dtype];
  const rowBytes = width * eb;
  if (c0 === 0 && c1 === width) return src.read(part.dataStart + r0 * rowBytes, part.dataStart + r1 * rowBytes);
  // A column slice of a row-major matrix: one range per row, never the whole rows.
  const sliceBytes = (c1 - c0) * eb;
  const out = new Uint8Array((r1 - r0) * sliceBytes);
  const reads: Promise<void>[] = [];
  for (let r = r0; r < r1; r++) {
    const start = part.dataStart + r * rowBytes + c0 * eb;
    reads.push(src.read(start, start + sliceBytes).then((b) => out.set(b, (r - r0) * sliceBytes)));
  }
  await Promise.all(reads);
  return out;
}

/**
 * The dense code histogram of nodes [colStart, colEnd) of a stacked matrix: node c's
 * out-edges are column c of every non-transposed part and row c of every transposed one.
 * Streams block by block; memory is the histogram plus one block.
 */
export async function matrixHistogram(
  parts: MatrixPart[],
  inputs: number,
  colStart: number,
  colEnd: number,
  p: MfaParams,
  open: (file: string) => Promise<ByteSource> = (f) => FileByteSource.open(f),
): Promise<{ hist: Uint32Array; bytesRead: number }> {
  const { lo, hi } = bucketRange(p);
  const nc = CODE_FIRST_BUCKET + hi - lo + 1;
  const nodes = colEnd - colStart;
  const hist = new Uint32Array(nodes * nc);
  let bytesRead = 0;
  const sources = new Map<string, ByteSource>();
  try {
    for (const part of parts) {
      let src = sources.get(part.file);
      if (!src) {
        src = await open(part.file);
        sources.set(part.file, src);
      }
      const code = coderFor(part.dtype, p);
      const eb = BYTES[part.dtype];
      if (part.transposed) {
        // Tensor [inputs, rows]: node c is the contiguous row c.
        const perBlock = Math.max(1, Math.floor(BLOCK_BYTES / (part.rows * eb)));
        for (let r0 = colStart; r0 < colEnd; r0 += perBlock) {
          const r1 = Math.min(colEnd, r0 + perBlock);
          const raw = await readBlock(src, part, part.rows, r0, r1, 0, part.rows);
          code(raw, r1 - r0, part.rows, false, r0 - colStart, hist, nc);
        }
      } else {
        // Tensor [rows, inputs]: node c is column c of every row.
        const width = colEnd - colStart;
        const perBlock = Math.max(1, Math.floor(BLOCK_BYTES / (width * eb)));
        for (let r0 = 0; r0 < part.rows; r0 += perBlock) {
          const r1 = Math.min(part.rows, r0 + perBlock);
          const raw = await readBlock(src, part, inputs, r0, r1, colStart, colEnd);
          code(raw, r1 - r0, width, true, 0, hist, nc);
        }
      }
    }
  } finally {
    for (const s of sources.values()) {
      bytesRead += s.bytesRead;
      await s.close();
    }
  }
  return { hist, bytesRead };
}
