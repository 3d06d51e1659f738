import type { MatrixPart, MfaParams } from '../proto/shard.js';
import type { ByteSource } from './io/byte-source.js';
import { openSource } from './io/open-source.js';
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

/**
 * One block of a matrix shard: rows [r0, r1) of part `part`, stored as `count` byte runs of
 * `sliceBytes` starting at `start`, `rowStride` apart (one run when the rows are whole).
 * The worker reads exactly these bytes; `--ship-bytes` sends exactly these bytes.
 */
export interface MatrixBlock {
  part: number;
  r0: number;
  r1: number;
  start: number;
  rowStride: number;
  sliceBytes: number;
  count: number;
}

/** The blocks of nodes [colStart, colEnd) of a stacked matrix, in reading order. */
export function matrixBlocks(parts: readonly MatrixPart[], inputs: number, colStart: number, colEnd: number): MatrixBlock[] {
  const blocks: MatrixBlock[] = [];
  parts.forEach((part, index) => {
    const eb = BYTES[part.dtype];
    if (part.transposed) {
      // Tensor [inputs, rows]: node c is the contiguous row c.
      const rowBytes = part.rows * eb;
      const perBlock = Math.max(1, Math.floor(BLOCK_BYTES / rowBytes));
      for (let r0 = colStart; r0 < colEnd; r0 += perBlock) {
        const r1 = Math.min(colEnd, r0 + perBlock);
        blocks.push({ part: index, r0, r1, start: part.dataStart + r0 * rowBytes, rowStride: (r1 - r0) * rowBytes, sliceBytes: (r1 - r0) * rowBytes, count: 1 });
      }
    } else {
      // Tensor [rows, inputs]: node c is column c of every row; a column range of a row-major
      // matrix is one slice per row, never the whole rows.
      const rowBytes = inputs * eb;
      const sliceBytes = (colEnd - colStart) * eb;
      const whole = sliceBytes === rowBytes;
      const perBlock = Math.max(1, Math.floor(BLOCK_BYTES / sliceBytes));
      for (let r0 = 0; r0 < part.rows; r0 += perBlock) {
        const r1 = Math.min(part.rows, r0 + perBlock);
        const start = part.dataStart + r0 * rowBytes + colStart * eb;
        blocks.push(
          whole
            ? { part: index, r0, r1, start, rowStride: (r1 - r0) * rowBytes, sliceBytes: (r1 - r0) * rowBytes, count: 1 }
            : { part: index, r0, r1, start, rowStride: rowBytes, sliceBytes, count: r1 - r0 },
        );
      }
    }
  });
  return blocks;
}

/** The bytes of one block, runs concatenated. */
export async function readBlock(src: ByteSource, b: MatrixBlock): Promise<Uint8Array> {
  if (b.count === 1) return src.read(b.start, b.start + b.sliceBytes);
  const out = new Uint8Array(b.count * b.sliceBytes);
  const reads: Promise<unknown>[] = [];
  for (let k = 0; k < b.count; k++) {
    const start = b.start + k * b.rowStride;
    reads.push(src.read(start, start + b.sliceBytes, out.subarray(k * b.sliceBytes, (k + 1) * b.sliceBytes)));
  }
  await Promise.all(reads);
  return out;
}

/** Where a matrix shard's bytes come from: files opened by path, or bytes shipped with the task. */
export type BlockBytes = { open: (file: string) => Promise<ByteSource> } | { inline: Uint8Array[] };

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
  from: BlockBytes = { open: openSource },
): Promise<{ hist: Uint32Array; bytesRead: number }> {
  const { lo, hi } = bucketRange(p);
  const nc = CODE_FIRST_BUCKET + hi - lo + 1;
  const hist = new Uint32Array((colEnd - colStart) * nc);
  const blocks = matrixBlocks(parts, inputs, colStart, colEnd);
  const coders = parts.map((part) => coderFor(part.dtype, p));
  let bytesRead = 0;
  const sources = new Map<string, ByteSource>();
  try {
    for (const [k, b] of blocks.entries()) {
      const part = parts[b.part];
      let raw: Uint8Array;
      if ('inline' in from) {
        raw = from.inline[k];
        bytesRead += raw.length;
      } else {
        let src = sources.get(part.file);
        if (!src) sources.set(part.file, (src = await from.open(part.file)));
        raw = await readBlock(src, b);
      }
      if (part.transposed) coders[b.part](raw, b.r1 - b.r0, part.rows, false, b.r0 - colStart, hist, nc);
      else coders[b.part](raw, b.r1 - b.r0, colEnd - colStart, true, 0, hist, nc);
    }
  } finally {
    for (const s of sources.values()) {
      bytesRead += s.bytesRead;
      await s.close();
    }
  }
  return { hist, bytesRead };
}
