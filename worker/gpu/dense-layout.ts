import type { BoxMass } from '../kernel/box-mass.js';
import { powerTable, type PowerTable } from '../kernel/power-table.js';
import { indexer, selectNodes, type Selection } from '../kernel/partition-sums.js';

/**
 * Host side of the float32 kernels: which nodes and rows a shard has, and its box masses
 * laid out densely (node × row) for a gather kernel. The GPU cannot scatter-add (gpu.js has
 * no atomics), so instead of adding each node's steps into rows as the f64 path does, every
 * (row, q) thread reads n_i(row) for its block of nodes. That costs selected × rows × Q
 * terms instead of hits × Q: equal on full-NIN shards (a node with thousands of edges hits
 * nearly every bucket), wasteful on sparse ones, which the caller leaves to f64.
 */
export interface ShardLayout extends Selection {
  /** Indices of the selected nodes, ascending. */
  nodes: Uint32Array;
}

/** The f64 path's selection (kernel/partition-sums selectNodes), with the selected nodes listed. */
export function shardLayout(box: BoxMass, minNeighbors: number): ShardLayout {
  const selection = selectNodes(box, minNeighbors);
  const nodes = new Uint32Array(selection.selected);
  for (let i = 0, s = 0; i < box.nodes; i++) if (selection.isSelected[i]) nodes[s++] = i;
  return { ...selection, nodes };
}

/** Row of a present bucket in the sparse layout: present[k] is row k + 1 (row 0 is below them all). */
export function rowIndexer(present: Int32Array): (b: number) => number {
  if (present.length === 0) return () => 0;
  const at = indexer(present);
  return (b) => at(b) + 1;
}

/** n^q and n^-q rounded to float32, q-major (q × stride) so a thread's q reads one stretch. */
export interface Float32Powers {
  /** Entries per q: n runs over [0, stride); n = 0 is never read. */
  stride: number;
  pos: Float32Array;
  neg: Float32Array;
}

const f32Cache = new WeakMap<PowerTable, Float32Powers>();

/**
 * Transposed and rounded from the float64 power table (worker/kernel/power-table.ts), the
 * one place powers are computed, so both paths start from the same float64 values. It grows
 * geometrically, which also keeps the table's size, hence the kernel's shape, stable
 * across a run's shards (webasm recompiles per argument size).
 */
export function float32Powers(q: Float64Array, maxN: number): Float32Powers {
  const table = powerTable(q, maxN);
  let f = f32Cache.get(table);
  if (!f) {
    const Q = q.length;
    const stride = table.maxN + 1;
    const pos = new Float32Array(Q * stride);
    const neg = new Float32Array(Q * stride);
    for (let n = 1; n < stride; n++) {
      for (let k = 0; k < Q; k++) {
        pos[k * stride + n] = table.pos[n * Q + k];
        neg[k * stride + n] = table.neg[n * Q + k];
      }
    }
    f = { stride, pos, neg };
    f32Cache.set(table, f);
  }
  return f;
}

/** One kernel call's worth of nodes, dense. */
export interface DenseChunk {
  /** n_i(row) for chunk node c at nAt[c * rowsPad + row]; padding nodes hold 1. */
  nAt: Float32Array;
  /** N_i^-q_k at inv[c * Q + k]; padding nodes hold 0, so their terms vanish. */
  inv: Float32Array;
  /** Thread blocks: the chunk's node count rounded up to whole blocks, divided by the block. */
  blocks: number;
}

/** Dense n_i(row) and N_i^-q for selected nodes layout.nodes[first, first + count). */
export function denseChunk(
  box: BoxMass,
  layout: ShardLayout,
  rowOf: (b: number) => number,
  powers: Float32Powers,
  Q: number,
  first: number,
  count: number,
  block: number,
  rowsPad: number,
): DenseChunk {
  const blocks = Math.ceil(count / block);
  const padded = blocks * block;
  const nAt = new Float32Array(padded * rowsPad);
  const inv = new Float32Array(padded * Q);
  const { neg, stride } = powers;
  for (let c = 0; c < count; c++) {
    const i = layout.nodes[first + c];
    const base = c * rowsPad;
    let row = 0;
    let n = 1;
    // Plain loops, not fill(): most runs are one or two cells and the call would dominate.
    for (let e = box.offsets[i]; e < box.offsets[i + 1]; e++) {
      const to = base + rowOf(box.buckets[e]);
      for (let x = base + row; x < to; x++) nAt[x] = n;
      row = to - base;
      n = 1 + box.cum[e];
    }
    for (let x = base + row; x < base + rowsPad; x++) nAt[x] = n;
    const N = box.kept[i] + 1;
    for (let k = 0; k < Q; k++) inv[c * Q + k] = neg[k * stride + N];
  }
  nAt.fill(1, count * rowsPad);
  return { nAt, inv, blocks };
}
