import type { LinkModel } from './read-plan.js';

/**
 * Round trip and throughput of one origin, measured from the requests made so far, so the
 * read planner adapts to the link it is on: a CDN next door, one an ocean away, a file in
 * the page cache. Until a measure exists, the defaults stand.
 *  - rttMs: time to the first body byte (headers for HTTP), a running mean biased to the
 *    lower values (queueing behind other requests inflates single samples).
 *  - bytesPerMs: bytes of large bodies over the time at least one of them was streaming, so
 *    concurrent requests sharing a link are measured together. A small body arrives in one
 *    piece whatever the link (its time is the round trip's, or the event loop's), so only
 *    bodies of 64 KiB or more count, and only once 1 MiB of them has flowed.
 */

/** Bodies smaller than this say nothing about the link's rate. */
const MIN_RATE_BODY = 64 << 10;
/** Body bytes to see before trusting the measured rate. */
const MIN_RATE_BYTES = 1 << 20;

interface Measures {
  rtt?: number;
  bytes: number;
  flowMs: number;
  streaming: number;
  flowSince: number;
}

/** Measures per origin for the life of the process: the next checkpoint of a series starts from them. */
const byOrigin = new Map<string, Measures>();

export class LinkMeter {
  private readonly m: Measures;

  constructor(
    private readonly defaults: LinkModel,
    /** Share the measures of every meter of this origin (e.g. the hub endpoint). */
    origin?: string,
    private readonly now: () => number = () => performance.now(),
  ) {
    const fresh = (): Measures => ({ bytes: 0, flowMs: 0, streaming: 0, flowSince: 0 });
    if (origin === undefined) {
      this.m = fresh();
    } else {
      this.m = byOrigin.get(origin) ?? fresh();
      byOrigin.set(origin, this.m);
    }
  }

  /** A request's first byte arrived `latencyMs` after it was sent. */
  firstByte(latencyMs: number): void {
    if (!(latencyMs >= 0)) return;
    const m = this.m;
    // Falls fast, rises slowly: a queued request's wait is not the link's round trip.
    m.rtt = m.rtt === undefined ? latencyMs : latencyMs < m.rtt ? 0.5 * m.rtt + 0.5 * latencyMs : 0.9 * m.rtt + 0.1 * latencyMs;
  }

  /** A body of `expected` bytes starts streaming; `end` is called once it is done, with what came. */
  bodyStarted(expected: number): { end: (bytes: number) => void } {
    if (expected < MIN_RATE_BODY) return { end: () => {} };
    const m = this.m;
    if (m.streaming++ === 0) m.flowSince = this.now();
    let ended = false;
    return {
      end: (bytes: number) => {
        if (ended) return;
        ended = true;
        m.bytes += bytes;
        if (--m.streaming === 0) m.flowMs += this.now() - m.flowSince;
      },
    };
  }

  /** The planner's view of the link now. */
  model(): LinkModel {
    const m = this.m;
    const ms = m.flowMs + (m.streaming > 0 ? this.now() - m.flowSince : 0);
    const rate = m.bytes >= MIN_RATE_BYTES && ms > 0 ? m.bytes / ms : undefined;
    return { ...this.defaults, ...(m.rtt !== undefined ? { rttMs: m.rtt } : {}), ...(rate !== undefined ? { bytesPerMs: rate } : {}) };
  }
}
