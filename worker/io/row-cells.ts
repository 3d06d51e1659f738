import { readRangesOf } from './byte-source.js';
import { bytesPerElement } from './dtype.js';
import type { WantedRange } from './ranged-read.js';
import { rowRanges } from './read-plan.js';
import { checkRow, isContiguous, MAX_WANTED_PIECE, readRowList, rowBytesOf, type TensorInfo } from './safetensors.js';

/**
 * The elements at `cols` of each of `rows` of a 2-D tensor, packed: cell (k, c) holds the
 * raw bytes of element [rows[k], cols[c]] at (k · cols.length + c) · elementBytes.
 * A sampled NIN uses 32 columns of a 1024-wide row: the rows are read (the planner decides
 * how), but only these elements are kept as the bytes stream by, so memory is the cells,
 * not the rows — on this VM every MB touched for the first time costs ~3 ms, and the rows
 * of ten pythia-410m samples are 140 MB. `rows` and `cols` must be sorted and distinct.
 */
export async function readRowCells(t: TensorInfo, rows: Int32Array, cols: Int32Array): Promise<Uint8Array> {
  const rowBytes = rowBytesOf(t);
  const e = bytesPerElement(t.dtype)!;
  for (let k = 0; k < rows.length; k++) {
    checkRow(t, rows[k], false);
    if (k > 0 && rows[k] <= rows[k - 1]) throw new RangeError(`tensor ${t.name}: rows must be sorted and distinct`);
  }
  for (let c = 0; c < cols.length; c++) {
    if (!Number.isSafeInteger(cols[c]) || cols[c] < 0 || cols[c] >= t.shape[1] || (c > 0 && cols[c] <= cols[c - 1])) {
      throw new RangeError(`tensor ${t.name}: columns must be sorted, distinct and in [0, ${t.shape[1]})`);
    }
  }
  const width = cols.length * e;
  const out = new Uint8Array(rows.length * width);
  if (out.length === 0) return out;
  if (!isContiguous(t)) {
    // A saved transpose: whole rows, gathered element by element anyway.
    const got = await readRowList(t, rows);
    rows.forEach((r, k) => pickRow(got.get(r)!, 0, cols, e, out, k * width, 0, rowBytes));
    return out;
  }
  const { starts, ends } = rowRanges(t.start, rowBytes, rows, MAX_WANTED_PIECE);
  const wanted: WantedRange[] = [];
  for (let i = 0, k0 = 0; i < starts.length; i++) {
    const first = k0;
    const base = starts[i];
    k0 += (ends[i] - starts[i]) / rowBytes;
    wanted.push({
      start: starts[i],
      end: ends[i],
      // A piece covers part of the range: each row it touches gives the cells inside it.
      take: (at, piece) => {
        const from = at - base;
        const to = from + piece.length;
        for (let r = Math.floor(from / rowBytes); r * rowBytes < to; r++) {
          pickRow(piece, r * rowBytes - from, cols, e, out, (first + r) * width, Math.max(0, from - r * rowBytes), Math.min(rowBytes, to - r * rowBytes));
        }
      },
    });
  }
  await readRangesOf(t.source, wanted);
  return out;
}

/**
 * Copies the cells of one row whose bytes lie in [lo, hi) of the row (the part a piece
 * holds); `rowAt` is where the row starts in `piece` (negative when it began earlier).
 */
function pickRow(piece: Uint8Array, rowAt: number, cols: Int32Array, e: number, out: Uint8Array, outAt: number, lo: number, hi: number): void {
  for (let c = 0; c < cols.length; c++) {
    const cell = cols[c] * e;
    if (cell + e <= lo) continue;
    if (cell >= hi) break;
    for (let b = Math.max(cell, lo); b < Math.min(cell + e, hi); b++) out[outAt + c * e + b - cell] = piece[rowAt + b];
  }
}
