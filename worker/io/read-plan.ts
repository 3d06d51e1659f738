/**
 * The read planner: which requests to make for a list of wanted byte ranges, by cost.
 *
 * Cost model (as Apache Arrow's ReadRangeCache, `CacheOptions::MakeFromNetworkMetrics`): a
 * request costs a round trip before its first byte, and the link moves `bytesPerMs` once
 * bytes flow. With `inFlight` requests overlapping their round trips, each request costs
 * rttMs / inFlight of wall time, and every byte 1 / bytesPerMs, so
 *     time ≈ requests · rttMs / inFlight + bytes / bytesPerMs.
 * Reading through a gap of g bytes instead of starting another request pays when
 * g / bytesPerMs < rttMs / inFlight: the hole limit is what the link moves while one
 * request's share of a round trip passes. The rule is decided gap by gap, so merging
 * greedily is optimal for this model; when every gap of a tensor is under the limit the
 * plan is one read from its first wanted row to its last (a whole-tensor read).
 * Pure functions: the tests check the choices on synthetic links.
 */

/** What the planner knows of an origin: measured (LinkMeter) or defaults. */
export interface LinkModel {
  /** Time to a first byte, ms (a syscall's cost for a local file). */
  rttMs: number;
  /** Throughput once bytes flow, all requests together. */
  bytesPerMs: number;
  /** Requests the origin takes at once (keep-alive connections, HTTP/2 streams, I/O threads). */
  maxInFlight: number;
  /** Largest request: bounds a streamed read's retry cost and keeps requests parallel. */
  maxRequestBytes: number;
  /** Fixed hole limit instead of the derived one (NEUROMFA_HUB_GAP_KB). */
  holeBytesOverride?: number;
}

/** Sorted, disjoint wanted ranges [starts[i], ends[i]). */
export interface WantedRanges {
  starts: ArrayLike<number>;
  ends: ArrayLike<number>;
}

/** One request: bytes [start, end) covering wanted ranges [first, last). */
export interface PlannedRequest {
  start: number;
  end: number;
  first: number;
  last: number;
}

/** Requests worth having in flight: enough to cover the round trips, at most the origin's. */
export function inFlightFor(link: LinkModel, pendingRequests: number): number {
  return Math.max(1, Math.min(link.maxInFlight, pendingRequests));
}

/** Unwanted bytes read through rather than start another request (see the file comment). */
export function holeBytes(link: LinkModel, inFlight: number): number {
  if (link.holeBytesOverride !== undefined) return link.holeBytesOverride;
  return Math.floor((link.bytesPerMs * link.rttMs) / Math.max(1, inFlight));
}

/**
 * The request starting at wanted range `i`: it takes the following ranges while the gap to
 * each is at most `hole` and the request stays within maxRequestBytes. Returns the index
 * after its last range.
 */
export function nextRequestEnd(w: WantedRanges, i: number, hole: number, maxRequestBytes: number): number {
  const start = w.starts[i];
  let j = i + 1;
  while (j < w.starts.length && w.starts[j] - w.ends[j - 1] <= hole && w.ends[j] - start <= maxRequestBytes) j++;
  return j;
}

/** The whole plan for one list of wanted ranges. */
export function planRequests(w: WantedRanges, link: LinkModel, inFlight = link.maxInFlight): PlannedRequest[] {
  const hole = holeBytes(link, inFlight);
  const out: PlannedRequest[] = [];
  for (let i = 0; i < w.starts.length; ) {
    const j = nextRequestEnd(w, i, hole, link.maxRequestBytes);
    out.push({ start: w.starts[i], end: w.ends[j - 1], first: i, last: j });
    i = j;
  }
  return out;
}

/** Modelled wall time (ms) of a plan on a link. */
export function planCostMs(requests: ReadonlyArray<{ start: number; end: number }>, link: LinkModel, inFlight = link.maxInFlight): number {
  let bytes = 0;
  for (const r of requests) bytes += r.end - r.start;
  return (requests.length * link.rttMs) / Math.max(1, inFlight) + bytes / link.bytesPerMs;
}

/**
 * Wanted ranges from sorted distinct row indices of `rowBytes` each at `base`: adjacent rows
 * form one range, and a range longer than `maxBytes` is cut so a request can hold it.
 */
export function rowRanges(base: number, rowBytes: number, sortedRows: ArrayLike<number>, maxBytes: number): { starts: Float64Array; ends: Float64Array } {
  const starts: number[] = [];
  const ends: number[] = [];
  const rowsPerPiece = Math.max(1, Math.floor(maxBytes / Math.max(1, rowBytes)));
  for (let i = 0; i < sortedRows.length; ) {
    let j = i + 1;
    while (j < sortedRows.length && sortedRows[j] === sortedRows[j - 1] + 1 && j - i < rowsPerPiece) j++;
    starts.push(base + sortedRows[i] * rowBytes);
    ends.push(base + (sortedRows[j - 1] + 1) * rowBytes);
    i = j;
  }
  return { starts: Float64Array.from(starts), ends: Float64Array.from(ends) };
}
