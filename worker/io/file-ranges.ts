import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { InputError } from '../../proto/errors.js';
import { planRequests, type LinkModel } from './read-plan.js';
import { deliverer, wantedRanges, type WantedRange } from './ranged-read.js';

/**
 * Wanted ranges of a local file, read synchronously in planned blocks. An asynchronous read
 * costs the main thread ~30–100 µs (a thread-pool hand-off, a promise, the completion); a
 * synchronous pread from the page cache ~2–4 µs, so a 5-sample pythia-410m analysis reads its
 * 22k wanted rows in ~50 ms instead of ~250 ms (bench/RESULTS.md, "Reading"). Blocks land in
 * one buffer reused for the life of the process (memory touched for the first time costs
 * ~3 ms/MB on the VMs we run on) and only the wanted bytes are copied out; a request that is
 * exactly one wanted range is read straight into it. The event loop gets a turn every few
 * MB, so progress, heartbeats and timers keep running while a big read goes on.
 */

/**
 * A synchronous local read: ~4 µs of system call, ~4 GB/s from the page cache, one at a time.
 * The hole limit comes out at 16 KB: rows closer than that are read through.
 */
export const LOCAL_FILE_LINK: LinkModel = { rttMs: 0.004, bytesPerMs: 4_000_000, maxInFlight: 1, maxRequestBytes: 1 << 20 };

/** Bytes read between turns of the event loop. */
const YIELD_BYTES = 8 << 20;

let block: Uint8Array | undefined;

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** pread until `into` is full; a short file is named. */
function preadSync(fd: number, name: string, into: Uint8Array, position: number): void {
  let done = 0;
  while (done < into.length) {
    const got = readSync(fd, into, done, into.length - done, position + done);
    if (got === 0) throw new InputError(`${name}: file shrank while reading (truncated at ${position + done})`);
    done += got;
  }
}

/** pread until `into` is full, asynchronously (one big read: the event loop runs meanwhile); a short file is named. */
export async function preadFully(handle: FileHandle, name: string, into: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new InputError(`${name}: file shrank while reading (truncated at ${position + done})`);
    done += bytesRead;
  }
}

export async function readFileRanges(handle: FileHandle, name: string, wanted: readonly WantedRange[], link: LinkModel = LOCAL_FILE_LINK): Promise<void> {
  let sinceTurn = 0;
  for (const { start, end, first, last } of planRequests(wantedRanges(wanted), link, 1)) {
    const only = wanted[first];
    if (last - first === 1 && only.into) {
      preadSync(handle.fd, name, only.into, start);
    } else {
      const size = end - start;
      const into = size <= link.maxRequestBytes ? (block ??= new Uint8Array(link.maxRequestBytes)).subarray(0, size) : new Uint8Array(size);
      preadSync(handle.fd, name, into, start);
      deliverer(wanted, first, last)(start, into);
    }
    sinceTurn += end - start;
    if (sinceTurn >= YIELD_BYTES) {
      sinceTurn = 0;
      await turn();
    }
  }
}
