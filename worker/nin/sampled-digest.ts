import { createHash } from 'node:crypto';
import type { Layout } from './layouts.js';
import { cellsByRow, sampleCells } from './sample-cells.js';
import type { SamplePlan } from './sample-plan.js';
import { indexer } from '../kernel/partition-sums.js';

/** The stored elements read of one tensor: rows × cols cells of elementBytes raw bytes each. */
export interface TensorCells {
  rows: Int32Array;
  cols: Int32Array;
  elementBytes: number;
  raw: Uint8Array;
}

/** By tensor name: what readSampledRows kept. */
export type ReadCells = Map<string, TensorCells>;

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
    const slotOf = new Int32Array(t.cols[t.cols.length - 1] + 1);
    t.cols.forEach((c, k) => (slotOf[c] = k));
    const rows = cellsByRow(mine.get(tensor)!);
    const rowIndex = indexer(t.rows);
    // One update per tensor: [u32 row index, the row's cells] for each row.
    const out = new Uint8Array(rows.reduce((a, [, cols]) => a + 4 + cols.length * e, 0));
    const view = new DataView(out.buffer);
    let at = 0;
    for (const [r, cols] of rows) {
      view.setUint32(at, r, true);
      at += 4;
      const row = rowIndex(r) * width;
      for (let k = 0; k < cols.length; k++) {
        const from = row + slotOf[cols[k]] * e;
        for (let b = 0; b < e; b++) out[at++] = t.raw[from + b];
      }
    }
    h.update(out);
  }
  return h.digest('hex');
}
