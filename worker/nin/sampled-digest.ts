import { createHash } from 'node:crypto';
import type { Layout } from './layouts.js';
import { sampleCells, sortedUnion, type CellBlock } from './sample-cells.js';
import type { SamplePlan } from './sample-plan.js';
import type { ReadCells } from './sampled-read.js';

/** The bytes hashed for one tensor, reused from tensor to tensor (hash.update copies them). */
let scratch = new Uint8Array(0);

/** The columns a tensor's blocks use in row r, sorted (one block: its columns). */
function colsOfRow(blocks: readonly CellBlock[], r: number): Int32Array {
  if (blocks.length === 1) return blocks[0].cols;
  return sortedUnion(blocks.filter((b) => b.rows.includes(r)).map((b) => b.cols));
}

/**
 * sha256 of the stored weights one sample's NIN uses: tensors by name, rows in increasing
 * order, each prefixed by its name and index, then the raw bytes of the row's elements the
 * sample reads in increasing column order. Two checkpoints that serve the same weights
 * under different files (a re-saved or re-sharded upload) agree here even though their
 * file hashes do not; the emergence series compares them. Only this sample's elements
 * count, so the digest does not depend on which other samples a run read.
 */
export function sampleDigest(layout: Layout, plan: SamplePlan, read: ReadCells): string {
  const h = createHash('sha256');
  const mine = sampleCells(layout, plan);
  for (const tensor of [...mine.keys()].sort()) {
    h.update(`${tensor}\0`);
    const t = read.get(tensor)!;
    const e = t.elementBytes;
    const width = t.cols.length * e;
    const blocks = mine.get(tensor)!;
    const rows = sortedUnion(blocks.map((b) => b.rows));
    const cols = Array.from(rows, (r) => colsOfRow(blocks, r));
    // One update per tensor: [u32 row index, the row's cells] for each row.
    const size = cols.reduce((a, c) => a + 4 + c.length * e, 0);
    if (scratch.length < size) scratch = new Uint8Array(size);
    const out = scratch;
    const outWords = new Uint16Array(out.buffer, 0, out.length >> 1);
    // Stored elements are 2, 4 or 8 bytes and `raw` starts a buffer: copied as 16-bit words.
    const rawWords = new Uint16Array(t.raw.buffer, t.raw.byteOffset, t.raw.length >> 1);
    const per = e >> 1;
    const { rowAt, slotOf } = t;
    let at = 0;
    for (let k = 0; k < rows.length; k++) {
      const r = rows[k];
      out[at++] = r & 0xff;
      out[at++] = (r >>> 8) & 0xff;
      out[at++] = (r >>> 16) & 0xff;
      out[at++] = r >>> 24;
      at = 2 * copyCells(rawWords, (rowAt[r] * width) >> 1, slotOf, cols[k], per, outWords, at >> 1);
    }
    h.update(out.subarray(0, size));
  }
  return h.digest('hex');
}

/** The cells of one stored row at `cols`, `per` 16-bit words each in column order, from word `at` on; returns the end. */
function copyCells(raw: Uint16Array, row: number, slotOf: Int32Array, cols: Int32Array, per: number, out: Uint16Array, at: number): number {
  if (per === 1) {
    for (let j = 0; j < cols.length; j++) out[at++] = raw[row + slotOf[cols[j]]];
    return at;
  }
  for (let j = 0; j < cols.length; j++) {
    const from = row + slotOf[cols[j]] * per;
    for (let w = 0; w < per; w++) out[at++] = raw[from + w];
  }
  return at;
}
