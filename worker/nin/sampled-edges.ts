import type { EdgeGroups } from '../plan/edge-groups.js';
import type { Layout, NinMatrix, Stage } from './layouts.js';
import { setFor, type SamplePlan } from './sample-plan.js';
import type { ReadCells } from './sampled-read.js';

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

/** One stage's weights on the sample's sets, reused from stage to stage. */
let stageScratch = new Float64Array(0);

/**
 * W of one stage restricted to the sample's sets, x-major: entry x·|Y| + y is the weight from
 * input X[x] to output Y[y] (0: no edge). A Linear part stores row Y[y] with column X[x]; a
 * Conv1D part stores the transpose. Filled output by output, so each inner loop reads one
 * stored row (or column) through one decoder.
 */
function stageWeights(st: Stage, X: Int32Array, Y: Int32Array, cells: ReadCells): Float64Array {
  const ny = Y.length;
  if (stageScratch.length < X.length * ny) stageScratch = new Float64Array(X.length * ny);
  const w = stageScratch;
  if (st.kind === 'pass') {
    for (let x = 0; x < X.length; x++) for (let y = 0; y < ny; y++) w[x * ny + y] = st.pass.value(X[x], Y[y]);
    return w;
  }
  const m = st.matrix;
  // Per part, the offset each input adds to a cell's index: its column slot, or its row's start.
  const inputAt = m.parts.map(() => null as Int32Array | null);
  for (let y = 0; y < ny; y++) {
    const { index, row } = partOf(m, Y[y]);
    const part = m.parts[index];
    const t = cells.get(part.tensor)!;
    const width = t.cols.length;
    let at = inputAt[index];
    if (!at) at = inputAt[index] = X.map((i) => (part.transposed ? t.rowAt[i] * width : t.slotOf[i]));
    const base = part.transposed ? t.slotOf[row] : t.rowAt[row] * width;
    const { values, table } = t;
    if (table) for (let x = 0, o = y; x < X.length; x++, o += ny) w[o] = table[values[base + at[x]]];
    else for (let x = 0, o = y; x < X.length; x++, o += ny) w[o] = values[base + at[x]];
  }
  return w;
}

/**
 * The reference edge list of one sample (SPEC §2), rows [src, dst, w] interleaved, in the
 * reference's order (each stage's inputs in draw order, outputs inner). Counters x0/y0 advance
 * by each stage's input and output sizes; zero weights are not edges.
 */
export function sampledEdges(layout: Layout, plan: SamplePlan, cells: ReadCells): Float64Array {
  const out = new Float64Array(3 * sampledEdgeBound(layout, plan));
  let n = 0;
  forEachStage(layout, plan, (st, X, Y, x0, y0) => {
    const w = stageWeights(st, X, Y, cells);
    const ny = Y.length;
    for (let x = 0; x < X.length; x++) {
      for (let y = 0; y < ny; y++) {
        const a = w[x * ny + y];
        if (a === 0) continue;
        out[n++] = x0 + X[x];
        out[n++] = y0 + Y[y];
        out[n++] = a;
      }
    }
  });
  return out.subarray(0, n);
}

/** Each set's positions stably ordered by value, by set: a sample's sets feed two stages each. */
const orders = new WeakMap<Int32Array, Int32Array>();

/** Position k of each X value, stably ordered by value (X is at most a few thousand long). */
function argsort(X: Int32Array): Int32Array {
  let order = orders.get(X);
  if (order) return order;
  const keys = new Float64Array(X.length);
  for (let k = 0; k < X.length; k++) keys[k] = X[k] * 2 ** 21 + k;
  keys.sort();
  order = new Int32Array(X.length);
  for (let k = 0; k < X.length; k++) order[k] = keys[k] % 2 ** 21;
  orders.set(X, order);
  return order;
}

/**
 * One sample's NIN grouped by source node, as groupBySource(sampledEdges(...)) groups it —
 * nodes in increasing id, each node's weights in edge-list order — built straight from the
 * stored cells: every source belongs to one stage (x0 only grows), so grouping is ordering
 * each stage's inputs. The weights live in shared memory for the pool's threads.
 */
export function sampledGroups(layout: Layout, plan: SamplePlan, cells: ReadCells): EdgeGroups {
  let nodeBound = 0;
  layout.blocks.forEach((block, b) => {
    for (const st of block.stages) nodeBound += setFor(plan, b, st.x).length;
  });
  const weights = new Float64Array(new SharedArrayBuffer(8 * Math.max(1, sampledEdgeBound(layout, plan))));
  const ids = new Float64Array(nodeBound);
  const offsets = new Uint32Array(nodeBound + 1);
  let n = 0;
  let e = 0;
  let x0 = 0;
  for (let b = 0; b < layout.blocks.length; b++) {
    for (const st of layout.blocks[b].stages) {
      const X = setFor(plan, b, st.x);
      const Y = setFor(plan, b, st.y);
      const w = stageWeights(st, X, Y, cells);
      const ny = Y.length;
      const order = argsort(X);
      for (let k = 0; k < order.length; k++) {
        const x = order[k];
        const start = e;
        for (let o = x * ny, end = o + ny; o < end; o++) {
          const v = w[o];
          if (v !== 0) weights[e++] = v;
        }
        // A node drawn twice continues its group, as a stable sort by source keeps it.
        if (e === start || (n > 0 && ids[n - 1] === x0 + X[x])) continue;
        ids[n] = x0 + X[x];
        offsets[n++] = start;
      }
      x0 += st.kind === 'pass' ? st.pass.inputs : st.matrix.inputs;
    }
  }
  offsets[n] = e;
  return { nodes: ids.slice(0, n), offsets: offsets.slice(0, n + 1), weights: weights.subarray(0, e), stride: 1 };
}

/** Each stage in NIN order with its sets and its first source (x0) and target (y0) ids. */
function forEachStage(layout: Layout, plan: SamplePlan, fn: (st: Stage, X: Int32Array, Y: Int32Array, x0: number, y0: number) => void): void {
  let x0 = 0;
  let y0 = layout.hidden;
  layout.blocks.forEach((block, b) => {
    for (const st of block.stages) {
      fn(st, setFor(plan, b, st.x), setFor(plan, b, st.y), x0, y0);
      x0 += st.kind === 'pass' ? st.pass.inputs : st.matrix.inputs;
      y0 += st.kind === 'pass' ? st.pass.outputs : st.matrix.outputs;
    }
  });
}
