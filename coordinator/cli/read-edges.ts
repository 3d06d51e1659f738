import { openCsvEdgeStream } from '../../worker/io/csv-edges.js';
import type { EdgeStream } from '../../worker/io/edge-list.js';
import { openNpyEdgeStream } from '../../worker/io/npy.js';

/**
 * Runs `work` on the edge list at `path` — a `.npy` (SPEC §1) or a CSV `src,dst,weight`
 * (`.csv`, `.txt`) — streamed in blocks of `chunkBytes`, and closes the file after.
 */
export async function withEdgeStream<T>(path: string, work: (stream: EdgeStream) => Promise<T>, chunkBytes?: number): Promise<T> {
  const stream = /\.(csv|txt)$/i.test(path) ? await openCsvEdgeStream(path, chunkBytes) : await openNpyEdgeStream(path, chunkBytes);
  try {
    return await work(stream);
  } finally {
    await stream.close();
  }
}
