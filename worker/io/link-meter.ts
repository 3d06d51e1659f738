import type { LinkModel } from './read-plan.js';

/**
 * Round trip and throughput of one origin, measured from the requests made so far, so the
 * read planner adapts to the link it is on: a CDN next door, one an ocean away, a file in
 * the page cache. Until a measure exists, the defaults stand.
 *  - rttMs: time to the first body byte (headers for HTTP), the least seen in the last
 *    RTT_WINDOW_MS (BBR's min_rtt). On a link the planner's own requests fill, nearly every
 *    request waits behind others' bytes: on the bench's 30 ms link the samples ran at 50–120
 *    ms. That wait is what the bytes cost, not what a request costs, and a round trip that
 *    counted it made the planner read through ever larger gaps, which filled the link more
 *    (samples 0–9 at 80 ms / 20 MB/s: 490 MB read, against 219 MB with the least sample).
 *  - bytesPerMs: bytes of large bodies over the time at least one of them was streaming, so
 *    concurrent requests sharing a link are measured together. A small body arrives in one
 *    piece whatever the link (its time is the round trip's, or the event loop's), so only
 *    bodies of 64 KiB or more count, and only once 1 MiB of them has flowed.
 */

/** Bodies smaller than this say nothing about the link's rate. */
const MIN_RATE_BODY = 64 << 10;
/** Body bytes to see before trusting the measured rate. */
const MIN_RATE_BYTES = 1 << 20;

/** How long the least round trip stands before a higher sample may replace it: a route can change. */
const RTT_WINDOW_MS = 10_000;

interface Measures {
  rtt?: number;
  /** When `rtt` was sampled. */
  rttAt: number;
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
    const fresh = (): Measures => ({ rttAt: 0, bytes: 0, flowMs: 0, streaming: 0, flowSince: 0 });
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
    const now = this.now();
    if (m.rtt === undefined || latencyMs <= m.rtt || now - m.rttAt > RTT_WINDOW_MS) {
      m.rtt = latencyMs;
      m.rttAt = now;
    }
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
