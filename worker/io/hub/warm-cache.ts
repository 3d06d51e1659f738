import type { ByteSource } from '../byte-source.js';
import { inLanes } from '../in-lanes.js';
import { CachedByteSource } from './cached-source.js';

/**
 * A --full shard reads a column range of a matrix as one slice per row: over HTTP that is
 * one request per row, thousands per shard. Reading the tensors whole beforehand, in large
 * ranges through the checkpoint's own sources, leaves them in the range cache, where every
 * shard (any thread) finds them; the requests are counted on the checkpoint.
 */

/** Bytes per request while warming: few round trips, bounded memory. */
const CHUNK_BYTES = 16 << 20;
const CONCURRENT = 4;

export async function warmRangeCache(ranges: ReadonlyArray<{ source: ByteSource; start: number; end: number }>): Promise<void> {
  const chunks: Array<{ source: CachedByteSource; at: number; to: number }> = [];
  for (const { source, start, end } of ranges) {
    // A file from the user's Hugging Face cache is already local: nothing to warm.
    if (!(source instanceof CachedByteSource)) continue;
    for (let at = start; at < end; at += CHUNK_BYTES) chunks.push({ source, at, to: Math.min(end, at + CHUNK_BYTES) });
  }
  await inLanes(chunks.length, CONCURRENT, async (k) => {
    const { source, at, to } = chunks[k];
    // A rerun finds it all cached: checked, not read back from disk for nothing.
    if (!(await source.covers(at, to))) await source.read(at, to);
  });
}
