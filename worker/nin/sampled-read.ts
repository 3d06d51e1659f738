import { openCheckpoint, type Checkpoint } from '../io/checkpoint.js';
import { bytesPerElement, storedValues, type StoredValues } from '../io/dtype.js';
import { readRowCells } from '../io/row-cells.js';
import { requireFloatTensor, rowBytesOf } from '../io/safetensors.js';
import { layoutFor, type Layout } from './layouts.js';
import type { SamplePlan } from './sample-plan.js';
import { cellSpan, sampleCells, type SampleCells } from './sample-cells.js';

/**
 * The stored elements read of one tensor: rows × cols cells of elementBytes raw bytes each,
 * row-major, with dense lookups so building a NIN finds a cell with two loads.
 */
export interface TensorCells extends StoredValues {
  rows: Int32Array;
  cols: Int32Array;
  elementBytes: number;
  raw: Uint8Array;
  /** Tensor row → its index in `rows`, −1 where not read. */
  rowAt: Int32Array;
  /** Tensor column → its index in `cols`, −1 where not kept. */
  slotOf: Int32Array;
}

/** By tensor name: what readSampledRows kept. */
export type ReadCells = Map<string, TensorCells>;

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

function indexOf(values: Int32Array, size: number): Int32Array {
  const at = new Int32Array(size).fill(-1);
  for (let k = 0; k < values.length; k++) at[values[k]] = k;
  return at;
}

/**
 * Reads the stored elements the samples use (each row once, however many samples use it),
 * keeping only those cells of each row. The coordinator runs this for an embedded analysis,
 * a worker for a sampled shard (sampled-shard.ts).
 */
export async function readSampledRows(ckpt: Checkpoint, layout: Layout, plans: readonly SamplePlan[], onRead?: ReadProgress): Promise<ReadCells> {
  const wanted: SampleCells = new Map();
  for (const plan of plans) sampleCells(layout, plan, wanted);
  const cells: ReadCells = new Map();
  let tensors = 0;
  let bytes = 0;
  await Promise.all(
    Array.from(wanted, async ([tensor, blocks]) => {
      const info = ckpt.tensors.get(tensor)!;
      const dtype = requireFloatTensor(info);
      const span = cellSpan(blocks);
      const raw = await readRowCells(info, span.rows, span.cols);
      cells.set(tensor, { ...span, elementBytes: bytesPerElement(dtype)!, raw, rowAt: indexOf(span.rows, info.shape[0]), slotOf: indexOf(span.cols, info.shape[1]), ...storedValues(dtype, raw) });
      bytes += span.rows.length * rowBytesOf(info);
      onRead?.(++tensors, wanted.size, bytes);
    }),
  );
  return cells;
}
