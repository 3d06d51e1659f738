import type { ByteSource } from '../byte-source.js';
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
  const jobs: Array<() => Promise<unknown>> = [];
  for (const { source, start, end } of ranges) {
    // A file from the user's Hugging Face cache is already local: nothing to warm.
    if (!(source instanceof CachedByteSource)) continue;
    for (let at = start; at < end; at += CHUNK_BYTES) {
      const to = Math.min(end, at + CHUNK_BYTES);
      jobs.push(() => source.read(at, to));
    }
  }
  let next = 0;
  const lane = async () => {
    while (next < jobs.length) await jobs[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENT, jobs.length) }, lane));
}
