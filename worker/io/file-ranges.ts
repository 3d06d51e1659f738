import type { FileHandle } from 'node:fs/promises';
import { InputError } from '../../proto/errors.js';
import { createLimiter } from './limiter.js';
import type { LinkModel } from './read-plan.js';
import { readPlanned, type WantedRange } from './ranged-read.js';

/**
 * Wanted ranges of a local file in large sequential blocks. Thousands of 2–8 KB row reads
 * cost a thread-pool hand-off and a promise each (≈2 s of a 5-sample pythia-410m analysis);
 * a 1 MB block from the page cache costs about as much as one of them. Blocks land in a few
 * buffers reused for the life of the process (memory touched for the first time costs
 * ~3 ms/MB on the VMs we run on) and only the wanted bytes are copied out; a request that
 * is exactly one wanted range is read straight into it.
 */

/**
 * A local read: ~50 µs of system call and thread hand-off, ~4 GB/s from the page cache
 * (measured in bench/RESULTS.md, "Reading"). The hole limit comes out at ~50 KB with the
 * four libuv threads busy.
 */
export const LOCAL_FILE_LINK: LinkModel = { rttMs: 0.05, bytesPerMs: 4_000_000, maxInFlight: 4, maxRequestBytes: 1 << 20 };

/** Local reads in flight in this process (libuv's four threads), so at most four blocks exist. */
const slot = createLimiter(LOCAL_FILE_LINK.maxInFlight);
const blocks: Uint8Array[] = [];
const takeBlock = () => blocks.pop() ?? new Uint8Array(LOCAL_FILE_LINK.maxRequestBytes);

/** pread until `into` is full; a short file is named. */
export async function preadFully(handle: FileHandle, name: string, into: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new InputError(`${name}: file shrank while reading (truncated at ${position + done})`);
    done += bytesRead;
  }
}

export async function readFileRanges(handle: FileHandle, name: string, wanted: readonly WantedRange[], link: LinkModel = LOCAL_FILE_LINK): Promise<void> {
  await readPlanned(
    wanted,
    () => link,
    async (start, end, deliver, { first, last }) => {
      const only = wanted[first];
      if (last - first === 1 && only.into) return preadFully(handle, name, only.into, start);
      const block = end - start <= LOCAL_FILE_LINK.maxRequestBytes ? takeBlock() : new Uint8Array(end - start);
      try {
        const view = block.subarray(0, end - start);
        await preadFully(handle, name, view, start);
        deliver(start, view);
      } finally {
        if (block.length === LOCAL_FILE_LINK.maxRequestBytes) blocks.push(block);
      }
    },
    slot,
  );
}
