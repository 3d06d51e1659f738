import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { analyzeModel } from '../coordinator/analysis/model-analysis.js';
import { InputError, IntegrityError, TransportError, UsageError } from '../proto/errors.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { MemoryByteSource } from '../worker/io/byte-source.js';
import { openCheckpoint, type Checkpoint } from '../worker/io/checkpoint.js';
import { delayFor, HttpByteSource, isRetryable, parseContentRange } from '../worker/io/http-byte-source.js';
import { nextLink } from '../worker/io/hub/client.js';
import { resolveHubOptions } from '../worker/io/hub/options.js';
import { listRevisions, openHubCheckpoint, openHubFile, parseHubRef, type HubOptions } from '../worker/io/hub/index.js';
import { readRowList, type TensorInfo } from '../worker/io/safetensors.js';
import { MockHub } from './helpers/mock-hub.js';
import { hfFixture, makeTmpDir } from './helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let seq = 0;
test.before(async () => {
  tmp = await makeTmpDir('neuromfa-hub-');
});
test.after.always(async () => {
  await tmp.cleanup();
});

/** A fresh empty directory under the test's tmp dir. */
async function freshDir(name: string): Promise<string> {
  const dir = join(tmp.dir, `${name}-${seq++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Each test gets its own hub (its own counters): ava runs the tests of a file concurrently. */
async function withHub(fn: (hub: MockHub) => Promise<void>): Promise<void> {
  const hub = await MockHub.start();
  try {
    await fn(hub);
  } finally {
    await hub.stop();
  }
}

interface TestOpts extends HubOptions {
  delays: number[];
}
/** Options that ignore the environment, with a fresh cache and retries that take no time. */
async function optsFor(hub: MockHub, extra: Partial<HubOptions> = {}): Promise<TestOpts> {
  const delays: number[] = [];
  return {
    endpoint: hub.hubUrl,
    cacheDir: await freshDir('cache'),
    hfCacheDir: await freshDir('hf-cache'),
    env: {},
    sleep: async (ms) => {
      delays.push(ms);
    },
    retry: { retries: 3, baseDelayMs: 1, maxDelayMs: 60_000, timeoutMs: 10_000 },
    delays,
    ...extra,
  };
}

async function closing<T extends Checkpoint, R>(c: Promise<T>, fn: (c: T) => Promise<R>): Promise<R> {
  const ck = await c;
  try {
    return await fn(ck);
  } finally {
    await ck.close();
  }
}

/** Rows by index: readRowList fills its map in completion order, which varies. */
const byRow = (m: Map<number, Uint8Array>) => [...m].sort((a, b) => a[0] - b[0]);

const allRows = (t: TensorInfo) => (t.shape.length === 2 ? Array.from({ length: t.shape[0] }, (_, i) => i) : []);

/** Same names, dtypes, shapes and bytes: every row of every 2-D tensor, every other tensor whole. */
async function assertSameTensors(t: ExecutionContext, remote: Checkpoint, local: Checkpoint): Promise<void> {
  t.deepEqual([...remote.tensors.keys()].sort(), [...local.tensors.keys()].sort());
  for (const [name, l] of local.tensors) {
    const r = remote.tensors.get(name)!;
    t.deepEqual([r.dtype, r.shape], [l.dtype, l.shape], name);
    if (l.shape.length === 2) {
      const [a, b] = await Promise.all([readRowList(r, allRows(r)), readRowList(l, allRows(l))]);
      for (const [row, bytes] of b) t.deepEqual(a.get(row), bytes, `${name} row ${row}`);
    } else {
      t.deepEqual(await r.source.read(r.start, r.end), await l.source.read(l.start, l.end), name);
    }
  }
}

const sha256Of = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

// ---- pure rules --------------------------------------------------------------------------

test('isRetryable: 408, 429 and 5xx (not 501); nothing else', (t) => {
  for (const s of [408, 429, 500, 502, 503, 504, 599]) t.true(isRetryable(s), String(s));
  for (const s of [200, 206, 301, 302, 400, 401, 403, 404, 416, 501]) t.false(isRetryable(s), String(s));
});

test('delayFor: Retry-After (seconds or date), then RateLimit t=, else doubling backoff; all capped', (t) => {
  const p = { baseDelayMs: 100, maxDelayMs: 30_000 };
  t.is(delayFor(0, new Headers(), p), 100);
  t.is(delayFor(3, new Headers(), p), 800);
  t.is(delayFor(20, new Headers(), p), 30_000);
  t.is(delayFor(0, new Headers({ 'Retry-After': '7' }), p), 7000);
  const now = Date.parse('2025-01-01T00:00:00Z');
  t.is(delayFor(0, new Headers({ 'Retry-After': 'Wed, 01 Jan 2025 00:00:12 GMT' }), p, now), 12_000);
  t.is(delayFor(0, new Headers({ 'Retry-After': 'Wed, 01 Jan 2025 00:00:00 GMT' }), p, now + 5000), 0);
  t.is(delayFor(0, new Headers({ RateLimit: '"resolvers";r=0;t=55' }), p), 30_000);
  t.is(delayFor(0, new Headers({ RateLimit: '"api";r=0;t=9' }), p), 9000);
  // Quota left in the window: no reason to wait for its end.
  t.is(delayFor(1, new Headers({ RateLimit: '"api";r=12;t=9' }), p), 200);
  t.is(delayFor(0, new Headers({ 'RateLimit-Reset': '4' }), p), 4000);
  t.is(delayFor(0, new Headers({ 'Retry-After': '2', RateLimit: '"api";r=0;t=9' }), p), 2000);
  t.is(delayFor(0, new Headers({ 'Retry-After': 'soon' }), p), 100);
});

test('NEUROMFA_HUB_CONCURRENCY and NEUROMFA_HUB_GAP_KB override the read planner; bad values are usage errors', (t) => {
  const at = (env: NodeJS.ProcessEnv) => resolveHubOptions({ env });
  t.like(at({}), { maxConcurrent: 8, rangesInFlight: 128 });
  t.false('holeBytes' in at({}), 'the hole limit is derived from the measured link unless overridden');
  t.like(at({ NEUROMFA_HUB_CONCURRENCY: '32', NEUROMFA_HUB_GAP_KB: '0' }), { maxConcurrent: 8, rangesInFlight: 32, holeBytes: 0 });
  t.like(resolveHubOptions({ env: { NEUROMFA_HUB_CONCURRENCY: '32' }, rangesInFlight: 2 }), { rangesInFlight: 2 }, 'an explicit option wins');
  t.throws(() => at({ NEUROMFA_HUB_CONCURRENCY: 'many' }), { instanceOf: UsageError, message: 'NEUROMFA_HUB_CONCURRENCY must be an integer from 1 to 256, got "many"' });
  t.throws(() => at({ NEUROMFA_HUB_GAP_KB: '-1' }), { instanceOf: UsageError, message: 'NEUROMFA_HUB_GAP_KB must be an integer from 0 to 1048576, got "-1"' });
});

test('parseContentRange and nextLink', (t) => {
  t.deepEqual(parseContentRange('bytes 0-9/100'), { first: 0, last: 9, total: 100 });
  t.deepEqual(parseContentRange('bytes 5-5/*'), { first: 5, last: 5, total: undefined });
  t.is(parseContentRange('bytes */100'), undefined);
  t.is(parseContentRange(null), undefined);
  const base = 'https://hub.example/api/models/a/b/tree/main';
  t.is(nextLink('<https://hub.example/api/models/a/b/tree/main?cursor=xyz>; rel="next"', base), 'https://hub.example/api/models/a/b/tree/main?cursor=xyz');
  t.is(nextLink('</api/x?cursor=2>; rel=next, </api/x?cursor=0>; rel="prev"', base), 'https://hub.example/api/x?cursor=2');
  t.is(nextLink('</api/x?cursor=0>; rel="prev"', base), undefined);
  t.is(nextLink(null, base), undefined);
});

test('parseHubRef: owner/name, @revision (main by default), invalid names refused', (t) => {
  t.deepEqual(parseHubRef('hf://EleutherAI/pythia-160m'), { owner: 'EleutherAI', name: 'pythia-160m', repo: 'EleutherAI/pythia-160m', revision: 'main' });
  t.is(parseHubRef('hf://EleutherAI/pythia-160m@step1000').revision, 'step1000');
  t.is(parseHubRef('hf://a/b@refs/pr/1').revision, 'refs/pr/1');
  for (const bad of ['hf://pythia', 'hf://a/b/c', 'hf://../b', 'hf://a/b@', 'hf://a/b c', 'hf://a--x/b', 'EleutherAI/pythia']) {
    t.throws(() => parseHubRef(bad), { instanceOf: UsageError }, bad);
  }
});

// ---- reading through the hub -------------------------------------------------------------

test('a sharded safetensors checkpoint through the hub equals the local one; tree pages followed', (t) =>
  withHub(async (hub) => {
    const dir = hfFixture('gpt-neox-sharded');
    const commit = await hub.addCommitFromDir('org/neox', dir);
    const opts = await optsFor(hub);
    await closing(openHubCheckpoint('hf://org/neox', opts), (remote) =>
      closing(openCheckpoint(dir), async (local) => {
        t.is(remote.commit, commit);
        t.is(remote.path, 'hf://org/neox');
        t.is(remote.files.length, 9);
        t.true(remote.files.every((f) => f.startsWith(`hf://org/neox@${commit}/model-0000`)));
        t.is(remote.fileBytes, local.fileBytes);
        for (const f of remote.files) {
          const file = f.split('/').pop()!;
          t.is(remote.sha256[file], await sha256Of(join(dir, file)), file);
        }
        await assertSameTensors(t, remote, local);
        t.is(remote.bytesRead(), local.bytesRead());
        t.is(remote.stats.requests, hub.log.length);
      }),
    );
    // 12 files, 2 per page: 6 pages, each asked for once.
    t.is(hub.requests('hub', /\/tree\//).length, 6);
    t.is(hub.requests('hub', /cursor=10/).length, 1);
    t.true(hub.log.every((r) => r.authorization === undefined));
  }),
);

test('analyze hf://… equals analyze of the local folder (sharded .bin); a second run makes no CDN request', (t) =>
  withHub(async (hub) => {
    const dir = hfFixture('gpt-neox-bin-sharded-f16');
    await hub.addCommitFromDir('EleutherAI/neox-bin', dir);
    // openCheckpoint('hf://…') takes its settings from the environment, as the CLI will.
    Object.assign(process.env, { HF_ENDPOINT: hub.hubUrl, NEUROMFA_CACHE: await freshDir('env-cache'), HF_HUB_CACHE: await freshDir('env-hf') });
    delete process.env.HF_TOKEN;
    const backend = new InProcessBackend();
    const opts = { samples: [0, 1, 2], layerSample: 16, params: { threshold: 150, decimals: 0, minNeighbors: 10, q: [-2, -1, 0, 1, 2] }, shardsPerSample: 2, shardBytes: 1 << 20 };
    const local = await analyzeModel(dir, opts, backend);
    const remote = await analyzeModel('hf://EleutherAI/neox-bin', opts, backend);
    t.deepEqual(remote.samples, local.samples);
    t.deepEqual([remote.layout, remote.stats.edges, remote.stats.fileBytes], [local.layout, local.stats.edges, local.stats.fileBytes]);
    // Remote reads merge rows a few rows apart into one request, so they may read a little more.
    t.true(remote.stats.bytesRead >= local.stats.bytesRead);
    t.true(hub.requests('cdn').length > 0);

    hub.resetCounters();
    const again = await analyzeModel('hf://EleutherAI/neox-bin', opts, backend);
    t.deepEqual(again.samples, local.samples);
    t.is(hub.requests('cdn').length, 0);
    // The one request a branch name costs: where does main point now (config.json's X-Repo-Commit)?
    t.deepEqual(hub.log.map((r) => `${r.method} ${r.path}`), ['GET /EleutherAI/neox-bin/resolve/main/config.json']);
  }),
);

test('a second revision holding the same files reads its bytes from the cache (keyed by sha256)', (t) =>
  withHub(async (hub) => {
    const dir = hfFixture('gpt-neox-f32');
    await hub.addCommitFromDir('org/series', dir, { branch: 'step0' });
    const c1 = await hub.addCommitFromDir('org/series', dir, { branch: 'step1' });
    const opts = await optsFor(hub);
    const rows = async (ref: string) =>
      closing(openHubCheckpoint(ref, opts), async (c) => {
        const w = c.tensors.get('gpt_neox.layers.0.attention.dense.weight')!;
        return { commit: c.commit, rows: byRow(await readRowList(w, [0, 5, 6, 63])), requests: c.stats.requests };
      });
    const a = await rows('hf://org/series@step0');
    const cdnAfterFirst = hub.requests('cdn').length;
    const b = await rows('hf://org/series@step1');
    t.is(b.commit, c1);
    t.deepEqual(b.rows, a.rows);
    t.is(hub.requests('cdn').length, cdnAfterFirst);
    t.is(hub.requests('hub', /resolve\/[0-9a-f]{40}\/model\.safetensors/).length, 1, 'one resolve, by the first revision');
    // Pinned to a commit and fully cached: not a single request.
    hub.resetCounters();
    const c = await rows(`hf://org/series@${c1}`);
    t.deepEqual(c.rows, a.rows);
    t.is(c.requests, 0);
    t.is(hub.log.length, 0);
  }),
);

test('a branch re-pointed to another commit is read at its new commit, not from the old cache', (t) =>
  withHub(async (hub) => {
    await hub.addCommitFromDir('org/moving', hfFixture('gpt-neox-f32'));
    const opts = await optsFor(hub);
    const read = () => closing(openHubCheckpoint('hf://org/moving', opts), async (c) => ({ commit: c.commit, size: c.fileBytes, names: [...c.tensors.keys()].length }));
    const before = await read();
    const moved = await hub.addCommitFromDir('org/moving', hfFixture('gpt-neox-bf16'));
    const after = await read();
    t.not(after.commit, before.commit);
    t.is(after.commit, moved);
    t.not(after.size, before.size);
  }),
);

test("the user's Hugging Face cache is read instead of the network", (t) =>
  withHub(async (hub) => {
    const dir = hfFixture('gpt-neox-sharded');
    const commit = await hub.addCommitFromDir('org/cached', dir);
    const opts = await optsFor(hub);
    const snap = join(opts.hfCacheDir!, 'models--org--cached', 'snapshots', commit);
    await mkdir(snap, { recursive: true });
    for (const f of await readdir(dir)) await symlink(join(dir, f), join(snap, f));
    await closing(openHubCheckpoint('hf://org/cached', opts), (remote) =>
      closing(openCheckpoint(dir), async (local) => {
        t.true(remote.files.every((f) => f.startsWith(snap)));
        await assertSameTensors(t, remote, local);
      }),
    );
    t.is(hub.requests('cdn').length, 0);
  }),
);

// ---- the token ---------------------------------------------------------------------------

test('a gated repo: refused without the token, read with it; the token reaches the hub and never the CDN', (t) =>
  withHub(async (hub) => {
    await hub.addCommitFromDir('meta/gated', hfFixture('gpt-neox-f32'), { gatedToken: 'hf_secret' });
    const err = await t.throwsAsync(openHubCheckpoint('hf://meta/gated', await optsFor(hub)), { instanceOf: InputError });
    t.regex(err!.message, /^hf:\/\/meta\/gated: gated repository; accept its conditions on the hub and set HF_TOKEN to a token with access \(Access to model meta\/gated is restricted\./);
    t.false(err!.message.includes('\n'));
    await t.throwsAsync(openHubCheckpoint('hf://meta/gated', await optsFor(hub, { token: 'hf_wrong' })), { message: /gated repository/ });

    hub.resetCounters();
    // From the environment, as the CLI passes it.
    const opts = await optsFor(hub, { env: { HF_TOKEN: 'hf_secret' } });
    await closing(openHubCheckpoint('hf://meta/gated', opts), async (c) => {
      const w = c.tensors.get('gpt_neox.layers.1.mlp.dense_h_to_4h.weight')!;
      t.is((await readRowList(w, [3, 200])).size, 2);
    });
    t.true(hub.requests('cdn').length > 0);
    t.true(hub.requests('hub').every((r) => r.authorization === 'Bearer hf_secret'));
    t.true(hub.requests('cdn').every((r) => r.authorization === undefined));
  }),
);

// ---- failures as the hub and CDNs produce them ------------------------------------------------

test('errors with X-Error-Code become one-line InputErrors', (t) =>
  withHub(async (hub) => {
    await hub.addCommitFromDir('org/model', hfFixture('gpt-neox-f32'));
    hub.addCommit('org/no-config', { 'model.safetensors': await readFile(join(hfFixture('gpt-neox-f32'), 'model.safetensors')) });
    hub.addCommit('org/no-weights', { 'config.json': Buffer.from('{"model_type": "gpt_neox"}') });
    const opts = await optsFor(hub);
    const cases: Array<[string, RegExp]> = [
      ['hf://org/missing', /^hf:\/\/org\/missing: repository not found \(private repositories need HF_TOKEN\) \(Repository Not Found for url: /],
      ['hf://org/model@step99', /^hf:\/\/org\/model@step99: revision not found \(Invalid rev id: step99\)$/],
      ['hf://org/no-config', /^hf:\/\/org\/no-config@main: file config\.json not found/],
      ['hf://org/no-weights', /^hf:\/\/org\/no-weights@[0-9a-f]{40}: no model\.safetensors, model\.safetensors\.index\.json, pytorch_model\.bin or pytorch_model\.bin\.index\.json in the repository$/],
    ];
    for (const [ref, message] of cases) {
      const err = await t.throwsAsync(openHubCheckpoint(ref, opts), { instanceOf: InputError }, ref);
      t.regex(err!.message, message);
      t.false(err!.message.includes('\n'));
    }
    t.deepEqual(opts.delays, [], 'permanent errors are not retried');
  }),
);

test('429 with Retry-After or RateLimit, on the hub and on the CDN, is retried after the advertised wait', (t) =>
  withHub(async (hub) => {
    await hub.addCommitFromDir('org/busy', hfFixture('gpt-neox-f32'));
    hub.inject('hub', { kind: 'status', status: 429, headers: { 'Retry-After': '3' } }, { match: /\/tree\// });
    hub.inject('hub', { kind: 'status', status: 429, headers: { RateLimit: '"resolvers";r=0;t=11', 'RateLimit-Policy': '"fixed window";"resolvers";q=3000;w=300' } }, { match: /resolve/ });
    hub.inject('cdn', { kind: 'status', status: 429, headers: { 'Retry-After': '5' } });
    const opts = await optsFor(hub);
    await closing(openHubCheckpoint('hf://org/busy', opts), (remote) =>
      closing(openCheckpoint(hfFixture('gpt-neox-f32')), (local) => assertSameTensors(t, remote, local)),
    );
    t.deepEqual([...opts.delays].sort((a, b) => a - b), [3000, 5000, 11_000]);
    t.is(hub.requests(undefined).filter((r) => r.status === 429).length, 3);
  }),
);

test('5xx is retried with backoff; a server that keeps failing gives a TransportError', (t) =>
  withHub(async (hub) => {
    await hub.addCommitFromDir('org/flaky', hfFixture('gpt-neox-f32'));
    hub.inject('cdn', { kind: 'status', status: 503 }, { times: 2 });
    hub.inject('hub', { kind: 'status', status: 502 }, { times: 1 });
    const opts = await optsFor(hub);
    await closing(openHubCheckpoint('hf://org/flaky', opts), async (c) => t.is(c.tensors.size, 28));
    t.deepEqual(opts.delays, [1, 1, 2]);

    hub.inject('cdn', { kind: 'status', status: 500 }, { times: 100 });
    const err = await t.throwsAsync(openHubCheckpoint('hf://org/flaky', await optsFor(hub)), { instanceOf: TransportError });
    t.regex(err!.message, /^hf:\/\/org\/flaky@[0-9a-f]{40}\/model\.safetensors: bytes 0-7: HTTP 500 \(gave up after 4 attempts\)$/);
  }),
);

test('a CDN that ignores Range (200) is never taken as the slice', (t) =>
  withHub(async (hub) => {
    await hub.addCommitFromDir('org/norange', hfFixture('gpt-neox-f32'));
    // Once: retried, and the data is still right.
    hub.inject('cdn', { kind: 'ignore-range' });
    const opts = await optsFor(hub);
    await closing(openHubCheckpoint('hf://org/norange', opts), (remote) =>
      closing(openCheckpoint(hfFixture('gpt-neox-f32')), (local) => assertSameTensors(t, remote, local)),
    );
    t.is(hub.requests('cdn').filter((r) => r.status === 200).length, 1);
    // Always: an error, and nothing from the 200 bodies was cached as data.
    hub.inject('cdn', { kind: 'ignore-range' }, { times: 100 });
    const fresh = await optsFor(hub);
    const err = await t.throwsAsync(openHubCheckpoint('hf://org/norange', fresh), { instanceOf: TransportError });
    t.regex(err!.message, /the server ignored the Range header \(200 instead of 206\) \(gave up after 4 attempts\)$/);
    hub.clearFaults();
    await closing(openHubCheckpoint('hf://org/norange', fresh), (remote) =>
      closing(openCheckpoint(hfFixture('gpt-neox-f32')), (local) => assertSameTensors(t, remote, local)),
    );
  }),
);

test('a body cut short is retried', (t) =>
  withHub(async (hub) => {
    await hub.addCommitFromDir('org/cut', hfFixture('gpt-neox-f32'));
    // Exact rows (no read-through), so the requests are known whatever the link measured.
    const opts = await optsFor(hub, { holeBytes: 0 });
    await closing(openHubCheckpoint('hf://org/cut', opts), (remote) =>
      closing(openCheckpoint(hfFixture('gpt-neox-f32')), async (local) => {
        hub.resetCounters();
        hub.inject('cdn', { kind: 'truncate' });
        const name = 'gpt_neox.layers.1.attention.query_key_value.weight';
        const [a, b] = await Promise.all([readRowList(remote.tensors.get(name)!, [0, 1, 2, 100]), readRowList(local.tensors.get(name)!, [0, 1, 2, 100])]);
        t.deepEqual(byRow(a), byRow(b));
        const ranges = hub.requests('cdn').map((r) => r.range);
        t.is(ranges.length, 3, 'rows 0-2 in one range, row 100 in another; one of them asked for twice');
        t.is(new Set(ranges).size, 2);
      }),
    );
  }),
);

test('an expired CDN URL (403) is resolved again and the read goes on', (t) =>
  withHub(async (hub) => {
    await hub.addCommitFromDir('org/expiry', hfFixture('gpt-neox-f32'));
    const opts = await optsFor(hub);
    await closing(openHubCheckpoint('hf://org/expiry', opts), (remote) =>
      closing(openCheckpoint(hfFixture('gpt-neox-f32')), async (local) => {
        t.is(hub.requests('hub', /resolve\/[0-9a-f]{40}\/model\.safetensors/).length, 1);
        hub.expireUrls();
        const name = 'gpt_neox.layers.0.mlp.dense_4h_to_h.weight';
        t.deepEqual(byRow(await readRowList(remote.tensors.get(name)!, [7, 9])), byRow(await readRowList(local.tensors.get(name)!, [7, 9])));
        // Both rows were in flight on the old URL; they share one re-resolution.
        t.true(hub.requests('cdn').filter((r) => r.status === 403).length >= 1);
        t.is(hub.requests('hub', /resolve\/[0-9a-f]{40}\/model\.safetensors/).length, 2);
      }),
    );
  }),
);

test('HttpByteSource: size by a bytes=0-0 probe, 416 is a clear error, identical concurrent reads share a request', (t) =>
  withHub(async (hub) => {
    const bytes = new Uint8Array(await readFile(join(hfFixture('gpt-neox-f32'), 'model.safetensors')));
    hub.addCommit('org/raw', { 'model.safetensors': bytes });
    const url = `${hub.cdnUrl}/blobs/${createHash('sha256').update(bytes).digest('hex')}?epoch=0`;
    const src = await HttpByteSource.open(url);
    t.is(src.size, bytes.length);
    hub.resetCounters();
    const [a, b] = await Promise.all([src.read(100, 5000), src.read(100, 5000)]);
    t.deepEqual(a, bytes.subarray(100, 5000));
    t.deepEqual(b, a);
    t.is(hub.log.length, 1);
    t.deepEqual(hub.log[0].range, 'bytes=100-4999');
    t.is(src.bytesRead, 2 * 4900);
    await t.throwsAsync(src.read(0, bytes.length + 1), { instanceOf: InputError, message: /outside the file/ });

    const liar = new HttpByteSource({ name: 'liar', url, size: bytes.length + 100 });
    await t.throwsAsync(liar.read(bytes.length, bytes.length + 10), { instanceOf: InputError, message: `liar: bytes ${bytes.length}-${bytes.length + 9}: range not satisfiable (HTTP 416; the file now has ${bytes.length} bytes)` });
    const shrunk = new HttpByteSource({ name: 'shrunk', url, size: bytes.length + 100 });
    await t.throwsAsync(shrunk.read(0, 10), { instanceOf: IntegrityError, message: /the file is \d+ bytes, not the \d+ it was resolved with/ });
  }),
);

test('concurrency is bounded per checkpoint; the request budget stops a runaway', (t) =>
  withHub(async (hub) => {
    await hub.addCommitFromDir('org/wide', hfFixture('gpt-neox-sharded'));
    hub.latencyMs = 5;
    const opts = await optsFor(hub, { maxConcurrent: 2, rangesInFlight: 2 });
    await closing(openHubCheckpoint('hf://org/wide', opts), async (c) => {
      // One row of every matrix at once: a request per tensor, at most 2 in flight.
      const matrices = [...c.tensors.values()].filter((x) => x.shape.length === 2);
      await Promise.all(matrices.map((m) => readRowList(m, [1])));
      t.true(hub.requests('cdn', /blobs/).length >= matrices.length);
    });
    t.true(hub.maxInFlight.cdn + hub.maxInFlight.hub >= 2);
    t.true(hub.maxInFlight.cdn <= 2, `max in flight ${hub.maxInFlight.cdn}`);
    t.true(hub.maxInFlight.hub <= 2, `max in flight ${hub.maxInFlight.hub}`);

    const tight = await optsFor(hub, { maxRequests: 3 });
    await t.throwsAsync(openHubCheckpoint('hf://org/wide', tight), { instanceOf: TransportError, message: /more than 3 HTTP requests for one checkpoint/ });
  }),
);

test('listRevisions: step<N> branches in numeric order, then the others', (t) =>
  withHub(async (hub) => {
    const files = { 'config.json': Buffer.from('{}') };
    const commits: Record<string, string> = {};
    for (const b of ['main', 'step1000', 'step0', 'step512', 'step143000', 'dev']) commits[b] = hub.addCommit('EleutherAI/pythia-x', files, { branch: b });
    const list = await listRevisions('hf://EleutherAI/pythia-x@main', await optsFor(hub));
    t.deepEqual(list.map((b) => b.name), ['step0', 'step512', 'step1000', 'step143000', 'dev', 'main']);
    t.deepEqual(list.map((b) => b.step), [0, 512, 1000, 143000, undefined, undefined]);
    t.true(list.every((b) => b.commit === commits[b.name]));
  }),
);

test('openHubFile reopens a remote source by the name its TensorInfo carries (for --full shards)', (t) =>
  withHub(async (hub) => {
    await hub.addCommitFromDir('org/full', hfFixture('gpt-neox-f32'));
    const opts = await optsFor(hub);
    await closing(openHubCheckpoint('hf://org/full', opts), async (c) => {
      const w = c.tensors.get('gpt_neox.layers.0.attention.dense.weight')!;
      const again = await openHubFile(w.source.name, opts);
      t.is(again.name, w.source.name);
      t.deepEqual(await again.read(w.start, w.start + 256), await w.source.read(w.start, w.start + 256));
      await again.close();
    });
    await t.throwsAsync(openHubFile('hf://org/full@main/model.safetensors', opts), { instanceOf: UsageError });
  }),
);
