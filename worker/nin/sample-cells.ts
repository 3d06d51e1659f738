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

const sortedDistinct = (v: Iterable<number>) => Int32Array.from(new Set(v)).sort();

export function sampleCells(layout: Layout, plan: SamplePlan, into: SampleCells = new Map()): SampleCells {
  layout.blocks.forEach((block, b) => {
    for (const st of block.stages) {
      if (st.kind !== 'matrix') continue;
      const X = setFor(plan, b, st.x);
      const local = st.matrix.parts.map(() => [] as number[]);
      for (const j of setFor(plan, b, st.y)) {
        const { index, row } = partOf(st.matrix, j);
        local[index].push(row);
      }
      st.matrix.parts.forEach((part, p) => {
        if (local[p].length === 0) return;
        const cell = part.transposed ? { rows: sortedDistinct(X), cols: sortedDistinct(local[p]) } : { rows: sortedDistinct(local[p]), cols: sortedDistinct(X) };
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
  return { rows: sortedDistinct(blocks.flatMap((b) => Array.from(b.rows))), cols: sortedDistinct(blocks.flatMap((b) => Array.from(b.cols))) };
}

/** Row → its columns (sorted), over every block: the cells of one tensor row by row. */
export function cellsByRow(blocks: readonly CellBlock[]): Array<[number, Int32Array]> {
  if (blocks.length === 1) return Array.from(blocks[0].rows, (r) => [r, blocks[0].cols]);
  const byRow = new Map<number, number[]>();
  for (const b of blocks) for (const r of b.rows) byRow.set(r, [...(byRow.get(r) ?? []), ...b.cols]);
  return [...byRow].sort((a, b) => a[0] - b[0]).map(([r, c]) => [r, sortedDistinct(c)]);
}
