import { InputError } from '../../proto/errors.js';
import { readCsvEdges } from '../../worker/io/csv-edges.js';
import { readNpyEdges, type EdgeList } from '../../worker/io/npy.js';

/** An edge list from `.npy` (SPEC §1) or CSV `src,dst,weight`, with node ids checked. */
export async function readEdges(path: string): Promise<EdgeList> {
  const edges = /\.(csv|txt)$/i.test(path) ? await readCsvEdges(path) : await readNpyEdges(path);
  for (let e = 0; e < edges.src.length; e++) {
    if (!Number.isFinite(edges.src[e]) || !Number.isFinite(edges.dst[e])) {
      throw new InputError(`${path}: edge ${e} has a non-finite node id (${edges.src[e]}, ${edges.dst[e]})`);
    }
  }
  if (edges.src.length === 0) throw new InputError(`${path}: the edge list is empty`);
  return edges;
}
