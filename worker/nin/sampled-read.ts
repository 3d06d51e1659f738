import { openCheckpoint, type Checkpoint } from '../io/checkpoint.js';
import { bytesPerElement, elementReader } from '../io/dtype.js';
import { readRowCells } from '../io/row-cells.js';
import { requireFloatTensor, rowBytesOf } from '../io/safetensors.js';
import { layoutFor, type Layout } from './layouts.js';
import type { SamplePlan } from './sample-plan.js';
import { cellSpan, sampleCells, type SampleCells } from './sample-cells.js';
import type { RowLookup } from './sampled-edges.js';
import type { ReadCells, TensorCells } from './sampled-digest.js';

/** Rows of `of` tensors read so far, `bytes` of them: from the hub this is most of a sampled run. */
export type ReadProgress = (tensors: number, of: number, bytes: number) => void;

/** A checkpoint and its NIN layout; the checkpoint is closed again when the layout is refused. */
export async function openModel(path: string, layerSample: number, open: (path: string) => Promise<Checkpoint> = openCheckpoint): Promise<{ ckpt: Checkpoint; layout: Layout }> {
  const ckpt = await open(path);
  try {
    return { ckpt, layout: layoutFor(path, ckpt.config, ckpt.tensors, layerSample) };
  } catch (err) {
    await ckpt.close();
    throw err;
  }
}

/**
 * Reads the stored elements the samples use (each row once, however many samples use it),
 * keeping only those cells of each row; elements are decoded on demand. The coordinator runs
 * this for an embedded analysis, a worker for a sampled shard (sampled-shard.ts).
 */
export async function readSampledRows(ckpt: Checkpoint, layout: Layout, plans: readonly SamplePlan[], cellsOut?: ReadCells, onRead?: ReadProgress): Promise<RowLookup> {
  const wanted: SampleCells = new Map();
  for (const plan of plans) sampleCells(layout, plan, wanted);
  const rows = new Map<string, Map<number, (col: number) => number>>();
  let tensors = 0;
  let bytes = 0;
  await Promise.all(
    Array.from(wanted, async ([tensor, cellsOfRow]) => {
      const info = ckpt.tensors.get(tensor)!;
      const dtype = requireFloatTensor(info);
      const span = cellSpan(cellsOfRow);
      const raw = await readRowCells(info, span.rows, span.cols);
      const e = bytesPerElement(dtype)!;
      const cells: TensorCells = { ...span, elementBytes: e, raw };
      cellsOut?.set(tensor, cells);
      bytes += span.rows.length * rowBytesOf(info);
      onRead?.(++tensors, wanted.size, bytes);
      const slotOf = new Int32Array(info.shape[1]).fill(-1);
      span.cols.forEach((c, k) => (slotOf[c] = k));
      const width = span.cols.length * e;
      const decoded = new Map<number, (col: number) => number>();
      span.rows.forEach((r, k) => {
        const read = elementReader(dtype, raw.subarray(k * width, (k + 1) * width));
        decoded.set(r, (col) => read(slotOf[col]));
      });
      rows.set(tensor, decoded);
    }),
  );
  return (t, r) => rows.get(t)!.get(r)!;
}
