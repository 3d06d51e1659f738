import { holeBytes, inFlightFor, nextRequestEnd, type LinkModel } from './read-plan.js';

/**
 * Executes read plans: many wanted ranges, few requests. Each lane plans its next request
 * when it is about to send it (read-plan.ts's rule, with the link as measured by then), so
 * the first requests' round trips already shape the later ones. A request's bytes arrive
 * as chunks; only the parts inside wanted ranges are copied out, so a request that reads
 * through gaps never holds more than one chunk of unwanted bytes.
 */

/**
 * Bytes [start, end) of the source: written into `into` (length end − start), or handed to
 * `take` piece by piece in order (a piece at a position already handed over is a retry),
 * for a caller that keeps only some of them (readRowCells keeps the sampled elements).
 */
export type WantedRange = { start: number; end: number } & ({ into: Uint8Array; take?: never } | { take: (at: number, piece: Uint8Array) => void; into?: never });

/**
 * Sends one request for [start, end) and hands its bytes over chunk by chunk, each with its
 * position in the source (a retried request hands them over again from `start`).
 */
export type RequestBytes = (start: number, end: number, deliver: (at: number, chunk: Uint8Array) => void, covers: { first: number; last: number }) => Promise<void>;

/** Runs `fn` holding one of the origin's request slots. */
export type Slot = <T>(fn: () => Promise<T>) => Promise<T>;

const direct: Slot = (fn) => fn();

/** The starts and ends of wanted ranges, which must be sorted by start and disjoint. */
export function wantedRanges(wanted: readonly WantedRange[]): { starts: number[]; ends: number[] } {
  const starts = wanted.map((w) => w.start);
  const ends = wanted.map((w) => w.end);
  for (let k = 1; k < wanted.length; k++) {
    if (starts[k] < ends[k - 1]) throw new RangeError(`wanted ranges overlap or are unsorted at ${starts[k]}`);
  }
  return { starts, ends };
}

/** Fills every wanted range (sorted by start, disjoint) through `send`, planning by `link()`. */
export async function readPlanned(wanted: readonly WantedRange[], link: () => LinkModel, send: RequestBytes, slot: Slot = direct): Promise<{ requests: number; bytes: number }> {
  const ranges = wantedRanges(wanted);
  const { starts, ends } = ranges;
  let next = 0;
  let requests = 0;
  let bytes = 0;
  const lanes = inFlightFor(link(), wanted.length);
  const lane = async (): Promise<void> => {
    while (next < wanted.length) {
      await slot(async () => {
        if (next >= wanted.length) return;
        const model = link();
        const first = next;
        const last = nextRequestEnd(ranges, first, holeBytes(model, lanes), model.maxRequestBytes);
        next = last;
        requests++;
        bytes += ends[last - 1] - starts[first];
        await send(starts[first], ends[last - 1], deliverer(wanted, first, last), { first, last });
      });
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  return { requests, bytes };
}

/**
 * Copies a request's chunks into the wanted ranges [first, last) it covers. Chunks come in
 * order; one before the cursor (a retry starting over) rewinds it.
 */
export function deliverer(wanted: readonly WantedRange[], first: number, last: number): (at: number, chunk: Uint8Array) => void {
  let k = first;
  return (from, chunk) => {
    const to = from + chunk.length;
    if (k > first && from < wanted[k - 1].end) k = first;
    while (k < last && wanted[k].end <= from) k++;
    for (let m = k; m < last && wanted[m].start < to; m++) {
      const w = wanted[m];
      const a = Math.max(from, w.start);
      const b = Math.min(to, w.end);
      if (a >= b) continue;
      if (w.into) w.into.set(chunk.subarray(a - from, b - from), a - w.start);
      else w.take(a, chunk.subarray(a - from, b - from));
    }
  };
}
