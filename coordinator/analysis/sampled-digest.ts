import { createHash } from 'node:crypto';
import type { Layout } from '../nin/layouts.js';
import type { SamplePlan } from '../nin/sample-plan.js';
import { neededRows } from '../nin/sampled-edges.js';

/** Raw stored rows as read, by tensor name and row index. */
export type RawRows = Map<string, Map<number, Uint8Array>>;

/**
 * sha256 of the weight bytes one sample reads: its rows, tensors by name and rows in
 * increasing order, each prefixed by its name and index. Two checkpoints that serve the
 * same weights under different files (a re-saved or re-sharded upload) agree here even
 * though their file hashes do not; the emergence series compares them.
 */
export function sampleDigest(layout: Layout, plan: SamplePlan, raw: RawRows): string {
  const h = createHash('sha256');
  const wanted = neededRows(layout, plan);
  const index = new Uint8Array(4);
  const view = new DataView(index.buffer);
  for (const tensor of [...wanted.keys()].sort()) {
    h.update(`${tensor}\0`);
    const rows = raw.get(tensor)!;
    for (const r of Int32Array.from(wanted.get(tensor)!).sort()) {
      view.setUint32(0, r, true);
      h.update(index);
      h.update(rows.get(r)!);
    }
  }
  return h.digest('hex');
}
