import type { MatrixPart, MfaParams } from '../proto/shard.js';
import type { ByteSource } from './io/byte-source.js';
import { openSource } from './io/open-source.js';
import { bf16BitsToNumber, f16BitsToNumber } from './io/dtype.js';
import { CODE_FIRST_BUCKET, bucketRange, bucketScale, codeTable16, weightCode } from './kernel/buckets.js';

/** Bytes per read while streaming a matrix: large enough to amortise, small enough to stay flat. */
const BLOCK_BYTES = 4 << 20;

const BYTES: Record<MatrixPart['dtype'], number> = { F64: 8, F32: 4, F16: 2, BF16: 2 };

/**
 * Codes a block of raw weights (`nRows` × `width`, row-major) into `out`. Weight (r, c) lands
 * at index h = first + r·rowStep + c·colStep, which covers both layouts: a Linear [out, in]
 * block gives node c its column, a Conv1D [in, out] block gives node r its row.
 * `count`: out is the dense node-major histogram and out[h + code] is incremented (h is the
 * node's row); otherwise out holds each node's codes as a list and out[h] = code.
 * 16-bit weights go through a 65,536-entry code table, wider ones through weightCode.
 * Plain nested loops, one copy per mode: this is the hot path.
 */
type Coder = (raw: Uint8Array, nRows: number, width: number, first: number, rowStep: number, colStep: number, out: Uint32Array, count: boolean) => void;

function coderFor(dtype: MatrixPart['dtype'], p: MfaParams): Coder {
  const scale = bucketScale(p.decimals);
  const { lo } = bucketRange(p);
  const T = p.threshold;
  if (dtype === 'F16' || dtype === 'BF16') {
    const table = codeTable16(dtype === 'F16' ? f16BitsToNumber : bf16BitsToNumber, dtype, p);
    return (raw, nRows, width, first, rowStep, colStep, out, count) => {
      const bits = new Uint16Array(raw.buffer, raw.byteOffset, nRows * width);
      let j = 0;
      for (let r = 0; r < nRows; r++) {
        let h = first + r * rowStep;
        if (count) for (let c = 0; c < width; c++, j++, h += colStep) out[h + table[bits[j]]]++;
        else for (let c = 0; c < width; c++, j++, h += colStep) out[h] = table[bits[j]];
      }
    };
  }
  return (raw, nRows, width, first, rowStep, colStep, out, count) => {
    const n = nRows * width;
    const v = dtype === 'F32' ? new Float32Array(raw.buffer, raw.byteOffset, n) : new Float64Array(raw.buffer, raw.byteOffset, n);
    let j = 0;
    for (let r = 0; r < nRows; r++) {
      let h = first + r * rowStep;
      if (count) for (let c = 0; c < width; c++, j++, h += colStep) out[h + weightCode(v[j], T, scale, lo)]++;
      else for (let c = 0; c < width; c++, j++, h += colStep) out[h] = weightCode(v[j], T, scale, lo);
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
 * A shard's weights as codes (buckets.ts), in one of two forms of the same counts:
 * - `histogram`: dense, node-major, one counter per (node, code): an increment per weight.
 *   Its width is the bucket grid, which follows the flags, not the model: --decimals 4 makes
 *   it 1.5M codes per node (6 GB for one shard of a 1.2 MB checkpoint).
 * - `lists`: each node's codes, `degree` per node (every node of a matrix shard has one weight
 *   per row of each part): memory is 4 bytes per weight of the shard, whatever the grid.
 */
export type ShardCodes = { kind: 'histogram'; hist: Uint32Array; nc: number } | { kind: 'lists'; codes: Uint32Array; degree: number };

/** Up to this many dense cells (64 MB) the histogram is used even where lists would be smaller. */
const DENSE_CELLS = 1 << 24;

/**
 * The codes of nodes [colStart, colEnd) of a stacked matrix: node c's out-edges are column c
 * of every non-transposed part and row c of every transposed one. The dense histogram when
 * its grid is no wider than a node's degree (the usual decimals 0) or it is small, else the
 * per-node lists (`form` forces one, for tests and benchmarks). Streams block by block;
 * memory is the codes plus one block.
 */
export async function matrixCodes(
  parts: MatrixPart[],
  inputs: number,
  colStart: number,
  colEnd: number,
  p: MfaParams,
  from: BlockBytes = { open: openSource },
  form?: ShardCodes['kind'],
): Promise<{ codes: ShardCodes; bytesRead: number }> {
  const { lo, hi } = bucketRange(p);
  const nc = CODE_FIRST_BUCKET + hi - lo + 1;
  const nodes = colEnd - colStart;
  const degree = parts.reduce((a, part) => a + part.rows, 0);
  const dense = form ? form === 'histogram' : nc <= degree || nodes * nc <= DENSE_CELLS;
  const out = new Uint32Array(nodes * (dense ? nc : degree));
  // Where part k's weights start in a node's list.
  const listAt = parts.map((_, k) => parts.slice(0, k).reduce((a, part) => a + part.rows, 0));
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
      const code = coders[b.part];
      const rows = b.r1 - b.r0;
      if (dense) {
        if (part.transposed) code(raw, rows, part.rows, (b.r0 - colStart) * nc, nc, 0, out, true);
        else code(raw, rows, nodes, 0, 0, nc, out, true);
      } else if (part.transposed) {
        code(raw, rows, part.rows, (b.r0 - colStart) * degree + listAt[b.part], degree, 1, out, false);
      } else {
        code(raw, rows, nodes, listAt[b.part] + b.r0, 1, degree, out, false);
      }
    }
  } finally {
    for (const s of sources.values()) {
      bytesRead += s.bytesRead;
      await s.close();
    }
  }
  return { codes: dense ? { kind: 'histogram', hist: out, nc } : { kind: 'lists', codes: out, degree }, bytesRead };
}

/** The dense code histogram of nodes [colStart, colEnd) (benchmarks compare kernels on it). */
export async function matrixHistogram(
  parts: MatrixPart[],
  inputs: number,
  colStart: number,
  colEnd: number,
  p: MfaParams,
  from: BlockBytes = { open: openSource },
): Promise<{ hist: Uint32Array; bytesRead: number }> {
  const { codes, bytesRead } = await matrixCodes(parts, inputs, colStart, colEnd, p, from, 'histogram');
  return { hist: (codes as Extract<ShardCodes, { kind: 'histogram' }>).hist, bytesRead };
}
