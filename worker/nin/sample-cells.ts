import type { Layout } from './layouts.js';
import { setFor, type SamplePlan } from './sample-plan.js';
import { partOf } from './sampled-edges.js';

/**
 * The stored elements a sample's NIN uses (sampledEdges reads exactly these), as blocks:
 * every row of `rows` × every column of `cols` of one stored tensor. A stage W[Y][:, X]
 * uses rows Y, columns X of a Linear part; a Conv1D part stores the transpose, rows X and
 * columns Y. Blocks, not cells: a sample of pythia-410m uses 250k elements.
 */
export interface CellBlock {
  rows: Int32Array;
  cols: Int32Array;
}

export type SampleCells = Map<string, CellBlock[]>;

/** Sorted distinct values (a sample's sets are a few hundred indices: typed sorts, no Sets). */
export function sortedDistinct(v: Int32Array): Int32Array {
  const s = v.slice().sort();
  let u = 0;
  for (let i = 0; i < s.length; i++) if (i === 0 || s[i] !== s[i - 1]) s[u++] = s[i];
  return s.subarray(0, u);
}

/** The sorted distinct union of several value lists. */
export function sortedUnion(lists: readonly Int32Array[]): Int32Array {
  if (lists.length === 1) return sortedDistinct(lists[0]);
  const all = new Int32Array(lists.reduce((a, l) => a + l.length, 0));
  let at = 0;
  for (const l of lists) {
    all.set(l, at);
    at += l.length;
  }
  return sortedDistinct(all);
}

export function sampleCells(layout: Layout, plan: SamplePlan, into: SampleCells = new Map()): SampleCells {
  layout.blocks.forEach((block, b) => {
    for (const st of block.stages) {
      if (st.kind !== 'matrix') continue;
      const X = sortedDistinct(setFor(plan, b, st.x));
      const Y = setFor(plan, b, st.y);
      const local = st.matrix.parts.map(() => new Int32Array(Y.length));
      const filled = new Int32Array(st.matrix.parts.length);
      for (const j of Y) {
        const { index, row } = partOf(st.matrix, j);
        local[index][filled[index]++] = row;
      }
      st.matrix.parts.forEach((part, p) => {
        if (filled[p] === 0) return;
        const mine = sortedDistinct(local[p].subarray(0, filled[p]));
        const cell = part.transposed ? { rows: X, cols: mine } : { rows: mine, cols: X };
        const list = into.get(part.tensor);
        if (list) list.push(cell);
        else into.set(part.tensor, [cell]);
      });
    }
  });
  return into;
}

/** The rows and the union of columns of a tensor's blocks, each sorted: what to read. */
export function cellSpan(blocks: readonly CellBlock[]): { rows: Int32Array; cols: Int32Array } {
  return { rows: sortedUnion(blocks.map((b) => b.rows)), cols: sortedUnion(blocks.map((b) => b.cols)) };
}
