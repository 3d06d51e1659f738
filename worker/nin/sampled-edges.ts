import type { Layout, NinMatrix } from './layouts.js';
import { setFor, type SamplePlan } from './sample-plan.js';

/** Rows of stored tensors, read once and shared by every sample: row → (column → weight). */
export type RowLookup = (tensor: string, row: number) => (col: number) => number;

/** Finds the stored part and local row that hold row j of a stacked matrix. */
export function partOf(m: NinMatrix, j: number): { index: number; row: number } {
  let row = j;
  for (let index = 0; index < m.parts.length; index++) {
    if (row < m.parts[index].rows) return { index, row };
    row -= m.parts[index].rows;
  }
  throw new RangeError(`row ${j} outside ${m.name}`);
}

/** Edges a sample can have at most: |X|·|Y| per stage (zero weights are then left out). */
export function sampledEdgeBound(layout: Layout, plan: SamplePlan): number {
  let bound = 0;
  layout.blocks.forEach((block, b) => {
    for (const st of block.stages) bound += setFor(plan, b, st.x).length * setFor(plan, b, st.y).length;
  });
  return bound;
}

/**
 * A buffer the edge lists of successive samples are written into, for callers that are done
 * with one sample's edges (grouped: groupBySource copies them) before building the next; new
 * memory costs ≈ 3 ms a MB here, and a pythia-410m sample's edge list is 6 MB.
 */
export interface EdgeScratch {
  buffer: Float64Array;
}

/**
 * The reference edge list of one sample (SPEC §2), rows [src, dst, w] interleaved, written into
 * one array sized from the plan (sampledEdgeBound) and returned as a view on its filled rows.
 * Counters x0/y0 advance by each stage's input and output sizes; zero weights are not edges.
 */
export function sampledEdges(layout: Layout, plan: SamplePlan, rowOf: RowLookup, scratch?: EdgeScratch): Float64Array {
  const need = 3 * sampledEdgeBound(layout, plan);
  if (scratch && scratch.buffer.length < need) scratch.buffer = new Float64Array(need);
  const out = scratch?.buffer ?? new Float64Array(need);
  let n = 0;
  let x0 = 0;
  let y0 = layout.hidden;
  layout.blocks.forEach((block, b) => {
    for (const st of block.stages) {
      const X = setFor(plan, b, st.x);
      const Y = setFor(plan, b, st.y);
      if (st.kind === 'pass') {
        for (const i of X) {
          for (const j of Y) {
            const a = st.pass.value(i, j);
            if (a === 0) continue;
            out[n++] = x0 + i;
            out[n++] = y0 + j;
            out[n++] = a;
          }
        }
        x0 += st.pass.inputs;
        y0 += st.pass.outputs;
        continue;
      }
      const m = st.matrix;
      // Filled column by column (one stored row per output j, so one reader per inner loop),
      // straight into the (i outer, j inner) places, then zero weights squeezed out.
      const base = n;
      const stride = 3 * Y.length;
      // A Conv1D part stores W transposed: its row i serves every j of that i, looked up once.
      const crossed = new Map<number, Array<(col: number) => number>>();
      for (let y = 0; y < Y.length; y++) {
        const { index, row } = partOf(m, Y[y]);
        const part = m.parts[index];
        const dst = y0 + Y[y];
        if (part.transposed && !crossed.has(index)) crossed.set(index, Array.from(X, (i) => rowOf(part.tensor, i)));
        const read = part.transposed ? null : rowOf(part.tensor, row);
        const rowsOfX = crossed.get(index);
        for (let x = 0, at = base + 3 * y; x < X.length; x++, at += stride) {
          out[at] = x0 + X[x];
          out[at + 1] = dst;
          out[at + 2] = read ? read(X[x]) : rowsOfX![x](row);
        }
      }
      const end = base + stride * X.length;
      for (let from = base; from < end; from += 3) {
        if (out[from + 2] === 0) continue;
        out[n++] = out[from];
        out[n++] = out[from + 1];
        out[n++] = out[from + 2];
      }
      x0 += m.inputs;
      y0 += m.outputs;
    }
  });
  return out.subarray(0, n);
}
