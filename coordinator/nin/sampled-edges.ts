import type { Layout, NinMatrix } from './layouts.js';
import { setFor, type SamplePlan } from './sample-plan.js';

/** Rows of stored tensors, read once and shared by every sample: row → (column → weight). */
export type RowLookup = (tensor: string, row: number) => (col: number) => number;

/** Finds the stored part and local row that hold row j of a stacked matrix. */
function partOf(m: NinMatrix, j: number): { index: number; row: number } {
  let row = j;
  for (let index = 0; index < m.parts.length; index++) {
    if (row < m.parts[index].rows) return { index, row };
    row -= m.parts[index].rows;
  }
  throw new RangeError(`row ${j} outside ${m.name}`);
}

/** The stored rows a sample touches: W rows in Y, or for Conv1D parts the rows in X. */
export function neededRows(layout: Layout, plan: SamplePlan, into = new Map<string, Set<number>>()): Map<string, Set<number>> {
  layout.blocks.forEach((block, b) => {
    for (const st of block.stages) {
      if (st.kind !== 'matrix') continue;
      const X = setFor(plan, b, st.x);
      const Y = setFor(plan, b, st.y);
      for (const j of Y) {
        const { index, row } = partOf(st.matrix, j);
        const part = st.matrix.parts[index];
        let rows = into.get(part.tensor);
        if (!rows) into.set(part.tensor, (rows = new Set()));
        if (part.transposed) for (const i of X) rows.add(i);
        else rows.add(row);
      }
    }
  });
  return into;
}

/**
 * The reference edge list of one sample (SPEC §2), rows [src, dst, w] interleaved. Counters
 * x0/y0 advance by each stage's input and output sizes; zero weights are not edges.
 */
export function sampledEdges(layout: Layout, plan: SamplePlan, rowOf: RowLookup): Float64Array {
  let out = new Float64Array(1 << 16);
  let n = 0;
  const push = (a: number, b: number, w: number) => {
    if (n + 3 > out.length) {
      const grown = new Float64Array(out.length * 2);
      grown.set(out);
      out = grown;
    }
    out[n++] = a;
    out[n++] = b;
    out[n++] = w;
  };
  let x0 = 0;
  let y0 = layout.hidden;
  layout.blocks.forEach((block, b) => {
    for (const st of block.stages) {
      const X = setFor(plan, b, st.x);
      const Y = setFor(plan, b, st.y);
      if (st.kind === 'pass') {
        for (const i of X) for (const j of Y) {
          const a = st.pass.value(i, j);
          if (a !== 0) push(x0 + i, y0 + j, a);
        }
        x0 += st.pass.inputs;
        y0 += st.pass.outputs;
        continue;
      }
      const m = st.matrix;
      const where = Array.from(Y, (j) => partOf(m, j));
      // W[j][i]: row j of a Linear part, or element j of row i of a Conv1D part.
      const straight = where.map(({ index, row }) => (m.parts[index].transposed ? null : rowOf(m.parts[index].tensor, row)));
      for (const i of X) {
        for (let y = 0; y < Y.length; y++) {
          const { index, row } = where[y];
          const w = straight[y]?.(i) ?? rowOf(m.parts[index].tensor, i)(row);
          if (w !== 0) push(x0 + i, y0 + Y[y], w);
        }
      }
      x0 += m.inputs;
      y0 += m.outputs;
    }
  });
  return out.slice(0, n);
}
