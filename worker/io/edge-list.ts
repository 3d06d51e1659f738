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

/** Node ids must be finite; weights may be anything (non-finite ones are skipped and counted). */
export function checkNodeIds(path: string, edges: EdgeList): void {
  const { src, dst, stride } = edges;
  for (let e = 0, j = 0; e < edges.count; e++, j += stride) {
    if (src[j] - src[j] !== 0 || dst[j] - dst[j] !== 0) {
      throw new InputError(`${path}: edge ${e} has a non-finite node id (${src[j]}, ${dst[j]})`);
    }
  }
}
