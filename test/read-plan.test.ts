import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileByteSource } from '../worker/io/byte-source.js';
import { LinkMeter } from '../worker/io/link-meter.js';
import { readPlanned, type WantedRange } from '../worker/io/ranged-read.js';
import { holeBytes, inFlightFor, planCostMs, planRequests, rowRanges, type LinkModel } from '../worker/io/read-plan.js';
import { makeTmpDir } from './helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
test.before(async () => {
  tmp = await makeTmpDir();
});
test.after.always(() => tmp.cleanup());

const MB = 1e6;
/** rtt in ms, rate in MB/s. */
const link = (rttMs: number, mbPerSec: number, maxInFlight = 64, maxRequestBytes = 16 << 20): LinkModel => ({ rttMs, bytesPerMs: (mbPerSec * MB) / 1000, maxInFlight, maxRequestBytes });

/** 2 KiB rows 5, 9, 10, 11, 40, 1000 and 1003 of a tensor at byte 4096: runs as a planner sees them. */
const ROW = 2048;
const wanted = rowRanges(4096, ROW, [5, 9, 10, 11, 40, 1000, 1003], 1 << 30);
const shape = (plan: ReturnType<typeof planRequests>) => plan.map((r) => [(r.start - 4096) / ROW, (r.end - 4096) / ROW]);

test('rowRanges: adjacent rows form one wanted range, cut at the size limit', (t) => {
  t.deepEqual(Array.from(wanted.starts, (s) => (s - 4096) / ROW), [5, 9, 40, 1000, 1003]);
  t.deepEqual(Array.from(wanted.ends, (s) => (s - 4096) / ROW), [6, 12, 41, 1001, 1004]);
  const cut = rowRanges(0, ROW, [0, 1, 2, 3, 4], 2 * ROW);
  t.deepEqual(Array.from(cut.starts), [0, 2 * ROW, 4 * ROW]);
  t.deepEqual(Array.from(cut.ends), [2 * ROW, 4 * ROW, 5 * ROW]);
});

test('the hole limit is what the link moves during one request’s share of a round trip', (t) => {
  // 30 ms × 100 MB/s = 3 MB per round trip, shared by 64 requests in flight.
  t.is(holeBytes(link(30, 100), 64), 46875);
  t.is(holeBytes(link(30, 100), 1), 3_000_000);
  t.is(holeBytes({ ...link(30, 100), holeBytesOverride: 4096 }, 64), 4096, 'NEUROMFA_HUB_GAP_KB wins');
  t.is(inFlightFor(link(30, 100), 3), 3, 'no more lanes than requests');
  t.is(inFlightFor(link(30, 100), 500), 64);
});

test('low latency: exact rows', (t) => {
  // 1 µs to a first byte at 1 GB/s: a 1 KB hole, less than any gap between these 2 KiB rows.
  const plan = planRequests(wanted, link(0.001, 1000, 1));
  t.deepEqual(shape(plan), [[5, 6], [9, 12], [40, 41], [1000, 1001], [1003, 1004]]);
});

test('high latency: rows merged across gaps a round trip would cost more than', (t) => {
  // 80 ms × 20 MB/s / 64 = 25 KB: the 28-row (56 KB) gap to row 40 stays a gap, the 2-row one is read through.
  t.deepEqual(shape(planRequests(wanted, link(80, 20))), [[5, 12], [40, 41], [1000, 1004]]);
  // One request at a time: each round trip costs 1.6 MB of link time, so only the 1.96 MB gap stays.
  t.deepEqual(shape(planRequests(wanted, link(80, 20, 1))), [[5, 41], [1000, 1004]]);
});

test('tiny gaps are read through even on a fast link', (t) => {
  const close = rowRanges(0, 64, [0, 2, 4, 6], 1 << 30);
  t.deepEqual(
    planRequests(close, link(0.05, 4000, 4)).map((r) => [r.start, r.end]),
    [[0, 7 * 64]],
  );
});

test('a cheap link reads the whole tensor in one request; the size limit still splits it', (t) => {
  const rows = rowRanges(0, ROW, [0, 100, 500, 1023], 1 << 30);
  t.deepEqual(planRequests(rows, link(30, 10_000)).map((r) => [r.start, r.end]), [[0, 1024 * ROW]], 'first to last row: the whole [1024, 1024] F16 tensor');
  t.deepEqual(planRequests(rows, link(30, 10_000, 64, 600 * ROW)).map((r) => [r.start / ROW, r.end / ROW]), [[0, 501], [1023, 1024]]);
});

test('the merged plan is the cheaper one on the link it was made for, and only there', (t) => {
  const slow = link(80, 20);
  const fast = link(0.001, 1000, 1);
  const merged = planRequests(wanted, slow);
  const exact = planRequests(wanted, fast);
  t.true(planCostMs(merged, slow) < planCostMs(exact, slow));
  t.true(planCostMs(exact, fast) < planCostMs(merged, fast));
  t.is(planCostMs([{ start: 0, end: 2 * MB }], link(10, 100, 4)), 10 / 4 + 20);
});

/** A source of bytes i % 251 whose requests are recorded and delivered in uneven chunks. */
function recordingSend(requests: Array<[number, number]>, opts: { retryFirst?: boolean } = {}) {
  let failed = false;
  return async (start: number, end: number, deliver: (at: number, chunk: Uint8Array) => void) => {
    requests.push([start, end]);
    const body = Uint8Array.from({ length: end - start }, (_, i) => (start + i) % 251);
    const deliverAll = () => {
      for (let at = 0, k = 1; at < body.length; k = (k * 7) % 13 || 1) {
        const n = Math.min(body.length - at, 37 * k);
        deliver(start + at, body.subarray(at, at + n));
        at += n;
      }
    };
    if (opts.retryFirst && !failed) {
      // Half a body, then the same request again from its start (a retried cut).
      failed = true;
      deliver(start, body.subarray(0, body.length >> 1));
    }
    deliverAll();
  };
}

const expected = (w: WantedRange) => Uint8Array.from({ length: w.end - w.start }, (_, i) => (w.start + i) % 251);
const wantedOf = (s: { starts: ArrayLike<number>; ends: ArrayLike<number> }): WantedRange[] =>
  Array.from(s.starts, (start, k) => ({ start, end: s.ends[k], into: new Uint8Array(s.ends[k] - start) }));

test('readPlanned makes the planned requests and fills every wanted range, whatever the chunking', async (t) => {
  for (const l of [link(0.001, 1000, 1), link(80, 20), link(80, 20, 1)]) {
    const w = wantedOf(wanted);
    const requests: Array<[number, number]> = [];
    const r = await readPlanned(w, () => l, recordingSend(requests));
    const plan = planRequests(wanted, l, inFlightFor(l, w.length));
    t.deepEqual(requests.sort((a, b) => a[0] - b[0]), plan.map((p) => [p.start, p.end] as [number, number]));
    t.is(r.requests, plan.length);
    for (const x of w) t.deepEqual(x.into, expected(x));
  }
});

test('readPlanned: a request delivered again from its start (a retry) still fills the ranges right', async (t) => {
  const w = wantedOf(wanted);
  await readPlanned(w, () => link(80, 20, 1), recordingSend([], { retryFirst: true }));
  for (const x of w) t.deepEqual(x.into, expected(x));
});

test('readPlanned refuses overlapping or unsorted ranges', async (t) => {
  const w = [
    { start: 10, end: 20, into: new Uint8Array(10) },
    { start: 15, end: 30, into: new Uint8Array(15) },
  ];
  await t.throwsAsync(readPlanned(w, () => link(1, 1), recordingSend([])), { instanceOf: RangeError, message: 'wanted ranges overlap or are unsorted at 15' });
});

test('LinkMeter: round trip the least of the last 10 s, rate from the time large bodies flowed, defaults until measured', (t) => {
  let now = 0;
  const m = new LinkMeter(link(50, 50), undefined, () => now);
  t.like(m.model(), { rttMs: 50, bytesPerMs: 50_000 });
  m.firstByte(30);
  m.firstByte(90); // queued behind others' bytes: not the link's round trip
  t.is(m.model().rttMs, 30);
  m.firstByte(20);
  t.is(m.model().rttMs, 20);
  now = 9_000;
  m.firstByte(45);
  t.is(m.model().rttMs, 20, 'within the window the least sample stands');
  now = 10_001;
  m.firstByte(45);
  t.is(m.model().rttMs, 45, 'past it, a route that got longer is taken');
  now = 0;
  // Two bodies overlapping from t=0 to t=20 ms carry 2 MB: 100 MB/s; idle time between does not count.
  const a = m.bodyStarted(1 << 20);
  now = 5;
  const small = m.bodyStarted(4096);
  const b = m.bodyStarted(1 << 20);
  now = 7;
  small.end(4096); // a small body: its time is a round trip's, not the link's
  now = 10;
  a.end(1 << 20);
  now = 20;
  b.end(1 << 20);
  now = 1000;
  t.is(m.model().bytesPerMs, (2 << 20) / 20);
  t.is(m.model().maxInFlight, 64, 'the origin’s capability stays as configured');
});

test('LinkMeter: meters of one origin share what was measured', (t) => {
  const origin = `test-origin-${Math.random()}`;
  new LinkMeter(link(50, 50), origin).firstByte(7);
  t.is(new LinkMeter(link(50, 50), origin).model().rttMs, 7);
  t.is(new LinkMeter(link(50, 50), `${origin}-other`).model().rttMs, 50);
});

test('a local file reads planned ranges in blocks: same bytes as range by range, bytesRead counts the wanted bytes', async (t) => {
  const path = join(tmp.dir, 'blob');
  const data = Uint8Array.from({ length: 3 << 20 }, (_, i) => i % 251);
  await writeFile(path, data);
  const src = await FileByteSource.open(path);
  try {
    // Rows of a 2 KiB tensor spread over 3 MB, plus one range longer than a block.
    const rows = Array.from({ length: 300 }, (_, k) => (k * 37) % 1500).sort((a, b) => a - b);
    const w = wantedOf(rowRanges(0, 2048, [...new Set(rows)], 1 << 30));
    w.push({ start: 3_100_000, end: 3 << 20, into: new Uint8Array((3 << 20) - 3_100_000) });
    await src.readRanges(w);
    for (const x of w) t.deepEqual(x.into, expected(x));
    t.is(src.bytesRead, w.reduce((a, x) => a + x.end - x.start, 0));
    await t.throwsAsync(src.readRanges([{ start: 0, end: (3 << 20) + 1, into: new Uint8Array((3 << 20) + 1) }]), { message: /read of bytes \[0, 3145729\) outside the file/ });
  } finally {
    await src.close();
  }
});
