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
  const words = wordsOf(out, e);
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
        const pieceWords = words && bufferWords(piece, words.BYTES_PER_ELEMENT);
        const size = words ? words.BYTES_PER_ELEMENT : 1;
        for (let r = Math.floor(from / rowBytes); r * rowBytes < to; r++) {
          const rowAt = r * rowBytes - from;
          const wordAt = piece.byteOffset + rowAt;
          // Whole rows (the usual case) are copied a word at a time, cut ones byte by byte.
          if (pieceWords && rowAt >= 0 && rowAt + rowBytes <= piece.length && wordAt % size === 0) pickWords(pieceWords, wordAt / size, cols, e / size, words!, ((first + r) * width) / size);
          else pickRow(piece, rowAt, cols, e, out, (first + r) * width, Math.max(0, from - r * rowBytes), Math.min(rowBytes, to - r * rowBytes));
        }
      },
    });
  }
  await readRangesOf(t.source, wanted);
  return out;
}

/** Bytes [byteOffset, byteOffset + bytes) of `buffer` as 16- or 32-bit words. */
function wordView(buffer: ArrayBufferLike, byteOffset: number, bytes: number, size: number): Uint16Array | Uint32Array {
  return size === 2 ? new Uint16Array(buffer, byteOffset, bytes >> 1) : new Uint32Array(buffer, byteOffset, bytes >> 2);
}

/** A 16- or 32-bit word view of `bytes` for copying elements of `e` bytes, where alignment allows one. */
function wordsOf(bytes: Uint8Array, e: number): Uint16Array | Uint32Array | null {
  const size = e === 2 ? 2 : e % 4 === 0 ? 4 : 0;
  if (size === 0 || bytes.byteOffset % size !== 0) return null;
  return wordView(bytes.buffer, bytes.byteOffset, bytes.length, size);
}

/** The last word view made of a piece's whole buffer: a local read's pieces all lie in one reused block. */
let viewed: { buffer: ArrayBufferLike; size: number; words: Uint16Array | Uint32Array } | undefined;

function bufferWords(piece: Uint8Array, size: number): Uint16Array | Uint32Array {
  if (viewed?.buffer !== piece.buffer || viewed.size !== size) viewed = { buffer: piece.buffer, size, words: wordView(piece.buffer, 0, piece.buffer.byteLength, size) };
  return viewed.words;
}

/** The cells of one whole row, `per` words each: element cols[c] of the row at word `rowAt`. */
function pickWords(piece: Uint16Array | Uint32Array, rowAt: number, cols: Int32Array, per: number, out: Uint16Array | Uint32Array, outAt: number): void {
  if (per === 1) {
    for (let c = 0; c < cols.length; c++) out[outAt + c] = piece[rowAt + cols[c]];
    return;
  }
  for (let c = 0; c < cols.length; c++) {
    const from = rowAt + cols[c] * per;
    for (let w = 0; w < per; w++) out[outAt + c * per + w] = piece[from + w];
  }
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
