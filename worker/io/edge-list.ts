import { InputError } from '../../proto/errors.js';

/**
 * An edge list as typed-array views: edge e is (src[e*stride], dst[e*stride], w[e*stride]).
 * Stride 3 views a `.npy` buffer's interleaved [src, dst, w] rows in place — no copy of a
 * multi-gigabyte file — and stride 1 holds separate columns.
 */
export interface EdgeList {
  count: number;
  stride: number;
  src: Float64Array;
  dst: Float64Array;
  w: Float64Array;
}

/** Views interleaved [src, dst, w] rows. */
export function edgesFromRows(rows: Float64Array): EdgeList {
  return { count: rows.length / 3, stride: 3, src: rows, dst: rows.subarray(1), w: rows.subarray(2) };
}

export function edgesFromColumns(src: Float64Array, dst: Float64Array, w: Float64Array): EdgeList {
  return { count: src.length, stride: 1, src, dst, w };
}

/**
 * Edges [first, first + count) of a file as read: edge first+i is src[i*stride], dst[i*stride],
 * w[i*stride]. The arrays are views on the reader's reused buffer, valid during the callback only.
 */
export interface EdgeBlock {
  first: number;
  count: number;
  stride: number;
  src: Float64Array;
  dst: Float64Array;
  w: Float64Array;
}

/** An edge list file read in blocks from its start, as often as asked (a second pass reads it again). */
export interface EdgeStream {
  readonly path: string;
  /** The edge count when the file states it before its edges (.npy); CSV learns it by reading. */
  readonly declaredCount: number | undefined;
  /** At most this many edges (CSV: one per shortest line, `0,0,0` and its line break). */
  readonly maxEdges: number;
  /**
   * Calls `onBlock` for every block in file order with node ids already checked (an InputError
   * names the first bad edge) unless `options.checkIds` is false; resolves to the number of edges.
   */
  scan(onBlock: (block: EdgeBlock) => void, options?: ScanOptions): Promise<number>;
  close(): Promise<void>;
}

export interface ScanOptions {
  /**
   * false: the caller checks every block's node ids in its own pass over the block (with
   * firstBadNodeId and nodeIdError), sparing a pass over every edge. A reader whose parsing
   * checks them anyway (CSV) still does. @default true
   */
  checkIds?: boolean;
}

/** Bytes a reader holds for one block of edges: big enough for sequential reads, small next to a file. */
export const DEFAULT_CHUNK_BYTES = 1 << 20;

/**
 * Node ids are integers stored as floats (SPEC §1): the first edge of the block whose source or
 * destination is NaN, infinite or fractional, or -1 when every id is one. Weights may be anything
 * (non-finite ones are skipped and counted by the kernel).
 */
export function firstBadNodeId(b: EdgeBlock): number {
  const { src, dst, stride, count } = b;
  for (let i = 0, j = 0; i < count; i++, j += stride) {
    if (!Number.isInteger(src[j]) || !Number.isInteger(dst[j])) return i;
  }
  return -1;
}

/** The one-line error for a bad node id; `location` is the path, or `path:line` for text. */
export function nodeIdError(location: string, edge: number, src: number, dst: number): InputError {
  const kind = Number.isFinite(src) && Number.isFinite(dst) ? 'non-integer' : 'non-finite';
  return new InputError(`${location}: edge ${edge} has a ${kind} node id (${src}, ${dst})`);
}

/** Checks every node id of an edge list held whole (the in-memory readers). */
export function checkNodeIds(path: string, edges: EdgeList): void {
  const bad = firstBadNodeId({ first: 0, ...edges });
  if (bad >= 0) throw nodeIdError(path, bad, edges.src[bad * edges.stride], edges.dst[bad * edges.stride]);
}
