import test from 'ava';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSyntheticNeox } from '../coordinator/demo/synthetic-neox.js';
import { DEFAULT_REMOTE_LINK, HttpByteSource } from '../worker/io/http-byte-source.js';
import { LinkMeter } from '../worker/io/link-meter.js';
import type { WantedRange } from '../worker/io/ranged-read.js';
import { MockHub } from './helpers/mock-hub.js';
import { runCli } from './helpers/run-cli.js';
import { makeTmpDir } from './helpers/tmp.js';

/**
 * The read planner against the mock hub with a real round trip: the numbers of a local read,
 * fewer requests than the fixed 4 KiB coalescing of issue #5 on a high-latency link, and a
 * merged request streamed (never held whole).
 */

let tmp: { dir: string; cleanup: () => Promise<void> };
let hub: MockHub;
let model: string;
test.before(async () => {
  tmp = await makeTmpDir('neuromfa-planner-');
  model = join(tmp.dir, 'neox');
  await mkdir(model);
  // Rows of 1 KiB (hidden 512, F16): a sampled read is thousands of rows with gaps of a few rows.
  await writeSyntheticNeox(model, { hidden: 512, blocks: 2, vocab: 256, dtype: 'F16', progress: 0.5, seed: 3 });
  hub = await MockHub.start();
  await hub.addCommitFromDir('org/neox', model);
});
test.after.always(async () => {
  await hub?.stop();
  await tmp.cleanup();
});

let seq = 0;
async function analyze(target: string, env: NodeJS.ProcessEnv = {}) {
  const cache = join(tmp.dir, `cache-${seq++}`);
  const r = await runCli(['analyze', target, '--samples', '0-2', '--threads', '1', '--json'], {
    env: { HF_ENDPOINT: hub.hubUrl, NEUROMFA_CACHE: cache, HF_HUB_CACHE: join(cache, 'no-hf'), HF_TOKEN: '', ...env },
  });
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

test.serial('on a 40 ms link the planner gives the local numbers in fewer requests than fixed 4 KiB coalescing', async (t) => {
  const local = await analyze(model);
  hub.latencyMs = 40;
  hub.linkBytesPerSec = 50e6;
  try {
    hub.resetCounters();
    const before = await analyze('hf://org/neox', { NEUROMFA_HUB_CONCURRENCY: '8', NEUROMFA_HUB_GAP_KB: '4' });
    const beforeRequests = hub.requests('cdn').length;
    hub.resetCounters();
    const planned = await analyze('hf://org/neox');
    const plannedRequests = hub.requests('cdn').length;
    for (const r of [before, planned]) {
      t.deepEqual(r.samples, local.samples);
      t.is(r.stats.bytesRead, local.stats.bytesRead, 'bytesRead counts the wanted rows, however they were fetched');
    }
    t.true(plannedRequests < beforeRequests / 2, `planned ${plannedRequests} requests, fixed coalescing ${beforeRequests}`);
    // The link as the planner measured it: at least the 40 ms the mock adds to every request.
    t.true(planned.stats.link.rttMs >= 40, JSON.stringify(planned.stats.link));
    t.true(planned.stats.link.mbPerSec > 0);
    t.false('link' in local.stats, 'a local checkpoint has no link');
    t.log(`CDN requests: ${beforeRequests} with 4 KiB coalescing, ${plannedRequests} planned`);
  } finally {
    hub.latencyMs = 0;
    hub.linkBytesPerSec = undefined;
  }
});

test.serial('NEUROMFA_HUB_GAP_KB=0 reads exact row runs: the requests are the wanted ranges', async (t) => {
  hub.resetCounters();
  const r = await analyze('hf://org/neox', { NEUROMFA_HUB_GAP_KB: '0' });
  const body = hub.requests('cdn').filter((x) => x.status === 206);
  const served = body.reduce((a, x) => {
    const m = /bytes=(\d+)-(\d+)/.exec(x.range!)!;
    return a + Number(m[2]) - Number(m[1]) + 1;
  }, 0);
  // Header reads (8 bytes, then the JSON header) and the wanted rows, nothing between.
  t.true(served - r.stats.bytesRead < 64 * 1024, `served ${served}, wanted ${r.stats.bytesRead}`);
});

test('a merged request is streamed: each chunk is copied out before the next is pulled', async (t) => {
  const size = 8 << 20;
  const chunk = 64 << 10;
  let pulled = 0;
  let delivered = 0;
  let most = 0;
  const fetch = async (_url: string, init?: RequestInit) => {
    const [a, b] = /bytes=(\d+)-(\d+)/.exec(String((init!.headers as Record<string, string>).Range))!.slice(1).map(Number);
    let at = a;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(c) {
          if (at > b) return c.close();
          const n = Math.min(chunk, b + 1 - at);
          c.enqueue(Uint8Array.from({ length: n }, (_, i) => (at + i) % 251));
          at += n;
          pulled++;
          most = Math.max(most, pulled - delivered);
        },
      },
      { highWaterMark: 0 },
    );
    return new Response(body, { status: 206, headers: { 'Content-Range': `bytes ${a}-${b}/${size}` } });
  };
  const meter = new LinkMeter({ ...DEFAULT_REMOTE_LINK, holeBytesOverride: 64 << 20 });
  const src = new HttpByteSource({ name: 'big', url: 'http://unused.invalid/x', size, fetch, meter });
  // The first and last 4 KiB, with gaps read through (a 64 MB hole limit): one 8 MB request.
  const wanted: WantedRange[] = [
    { start: 0, end: 4096, into: new Uint8Array(4096) },
    { start: size - 4096, end: size, into: new Uint8Array(4096) },
  ];
  const requests: Array<[number, number]> = [];
  await src.readRanges(wanted, { chunk: async () => void delivered++, done: (s, e) => void requests.push([s, e]) });
  t.deepEqual(requests, [[0, size]]);
  t.is(pulled, size / chunk);
  t.true(most <= 2, `${most} chunks held at once`);
  for (const w of wanted) t.deepEqual(w.into, Uint8Array.from({ length: 4096 }, (_, i) => (w.start + i) % 251));
  t.is(src.bytesRead, 8192);
});
