import test from 'ava';
import { FileByteSource, MemoryByteSource, type ByteSource } from '../worker/io/byte-source.js';
import { DEFAULT_REMOTE_LINK, HttpByteSource } from '../worker/io/http-byte-source.js';
import { LinkMeter } from '../worker/io/link-meter.js';
import { readRowCells } from '../worker/io/row-cells.js';
import type { TensorInfo } from '../worker/io/safetensors.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmpDir } from './helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
test.before(async () => {
  tmp = await makeTmpDir();
});
test.after.always(() => tmp.cleanup());

/** A [300, 50] F16 tensor at byte 100 of a file of bytes i % 253. */
const ROWS = 300;
const COLS = 50;
const E = 2;
const START = 100;
const data = Uint8Array.from({ length: START + ROWS * COLS * E + 40 }, (_, i) => i % 253);
const tensor = (source: ByteSource, strides?: number[]): TensorInfo => ({ name: 'w', dtype: 'F16', shape: [ROWS, COLS], start: START, end: START + ROWS * COLS * E, source, ...(strides ? { strides } : {}) });

/** The cells as arithmetic says: element [r, c] of row-major storage, or of storage strided (s0, s1). */
function expectedCells(rows: Int32Array, cols: Int32Array, strides = [COLS, 1]): Uint8Array {
  const out = new Uint8Array(rows.length * cols.length * E);
  rows.forEach((r, k) =>
    cols.forEach((c, j) => {
      const at = START + (r * strides[0] + c * strides[1]) * E;
      out.set(data.subarray(at, at + E), (k * cols.length + j) * E);
    }),
  );
  return out;
}

const rows = Int32Array.from([0, 1, 2, 7, 40, 41, 150, 299]);
const cols = Int32Array.from([0, 3, 4, 17, 49]);

/** An HTTP source whose answers arrive in 7-byte chunks: cells split across chunks. */
function choppyHttp(): HttpByteSource {
  const fetch = async (_url: string, init?: RequestInit) => {
    const [a, b] = /bytes=(\d+)-(\d+)/.exec(String((init!.headers as Record<string, string>).Range))!.slice(1).map(Number);
    let at = a;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (at > b) return c.close();
        c.enqueue(data.slice(at, Math.min(b + 1, at + 7)));
        at += 7;
      },
    });
    return new Response(body, { status: 206, headers: { 'Content-Range': `bytes ${a}-${b}/${data.length}` } });
  };
  return new HttpByteSource({ name: 'choppy', url: 'http://unused.invalid/x', size: data.length, fetch, meter: new LinkMeter({ ...DEFAULT_REMOTE_LINK, holeBytesOverride: 1000 }) });
}

test('readRowCells keeps exactly the sampled elements, from a file, a plain source and a chunked HTTP body', async (t) => {
  const path = join(tmp.dir, 'cells');
  await writeFile(path, data);
  const file = await FileByteSource.open(path);
  try {
    for (const source of [file, new MemoryByteSource('memory', data), choppyHttp()]) {
      t.deepEqual(await readRowCells(tensor(source), rows, cols), expectedCells(rows, cols), source.name);
      t.is(source.bytesRead, rows.length * COLS * E, `${source.name}: bytesRead counts the rows read`);
    }
  } finally {
    await file.close();
  }
});

test('readRowCells on a strided tensor (a saved transpose) gathers the same cells', async (t) => {
  // Storage [COLS, ROWS] read as its transpose [ROWS, COLS]: strides (1, ROWS).
  const got = await readRowCells(tensor(new MemoryByteSource('t', data), [1, ROWS]), rows, cols);
  t.deepEqual(got, expectedCells(rows, cols, [1, ROWS]));
});

test('readRowCells refuses unsorted or out-of-range rows and columns', async (t) => {
  const m = tensor(new MemoryByteSource('m', data));
  await t.throwsAsync(readRowCells(m, Int32Array.from([3, 1]), cols), { instanceOf: RangeError, message: 'tensor w: rows must be sorted and distinct' });
  await t.throwsAsync(readRowCells(m, Int32Array.from([300]), cols), { instanceOf: RangeError, message: 'tensor w: row 300 outside [0, 300)' });
  await t.throwsAsync(readRowCells(m, rows, Int32Array.from([4, 50])), { instanceOf: RangeError, message: 'tensor w: columns must be sorted, distinct and in [0, 50)' });
  t.is((await readRowCells(m, new Int32Array(0), cols)).length, 0);
});

test('readRowCells copies 4- and 8-byte elements a word at a time, at any tensor offset, as the bytes say', async (t) => {
  const path = join(tmp.dir, 'wide-cells');
  await writeFile(path, data);
  const file = await FileByteSource.open(path);
  try {
    for (const [dtype, e] of [['F32', 4], ['F64', 8]] as const) {
      // An odd start: rows do not sit on word boundaries of the file, only of the read blocks.
      for (const start of [START, START + 1]) {
        const rowsOf = 60;
        const info: TensorInfo = { name: 'w', dtype, shape: [rowsOf, 10], start, end: start + rowsOf * 10 * e, source: file };
        const r = Int32Array.from([0, 5, 6, 59]);
        const c = Int32Array.from([0, 4, 9]);
        const want = new Uint8Array(r.length * c.length * e);
        r.forEach((row, k) => c.forEach((col, j) => want.set(data.subarray(start + (row * 10 + col) * e, start + (row * 10 + col + 1) * e), (k * c.length + j) * e)));
        t.deepEqual(await readRowCells(info, r, c), want, `${dtype} at ${start}`);
      }
    }
  } finally {
    await file.close();
  }
});
