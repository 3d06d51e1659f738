import { InputError } from '../../proto/errors.js';
import { readCsvEdges } from '../../worker/io/csv-edges.js';
import type { EdgeList } from '../../worker/io/edge-list.js';
import { readNpyEdges } from '../../worker/io/npy.js';

/** An edge list from `.npy` (SPEC §1) or CSV `src,dst,weight`; the readers check node ids. */
export async function readEdges(path: string): Promise<EdgeList> {
  const edges = /\.(csv|txt)$/i.test(path) ? await readCsvEdges(path) : await readNpyEdges(path);
  if (edges.count === 0) throw new InputError(`${path}: the edge list is empty`);
  return edges;
}
