import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startMockHubIn, startNatsIn, startWorkerIn, type LanHub, type LanWorker } from './helpers/lan-cluster.js';
import { natsServerMissing } from './helpers/nats-server.js';
import { lanMissing, makeLan, netemMissing, type Lan } from './helpers/netns-lan.js';
import { hfFixture, makeTmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

/**
 * The multi-host harness itself: three hosts on one bridge (the mock hub on `hub`, clients on
 * `w1` and `w2`), each client a separate process in its own namespace. The hub must see each
 * client by its own address; shaping, cutting and restoring one host's link must leave the
 * other's alone.
 */
const missing = lanMissing();
const lanTest = missing ? test.skip : test.serial;
const why = missing ? ` (${missing})` : '';

let lan: Lan;
let hub: LanHub;
let tmpDir = '';
let cleanup = async () => {};
let fixture: Uint8Array;
let big: Uint8Array;
const BIG = 3_000_000;
const fixtureUrl = () => `${hub.url}/lan/fixture/resolve/main/model.safetensors`;
const bigUrl = () => `${hub.url}/lan/big/resolve/main/big.bin`;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Fetched {
  status?: number;
  bytes?: number;
  sha256?: string;
  ms?: number;
  error?: string;
}

// A client of its own: Node's fetch (following the hub's redirect to the CDN) run on `host`.
const FETCH = `
const [url, ms] = process.argv.slice(1);
const t0 = performance.now();
const print = (v) => { process.stdout.write(JSON.stringify(v) + '\\n'); process.exit(0); };
fetch(url, { signal: AbortSignal.timeout(Number(ms)) })
  .then(async (r) => {
    const b = new Uint8Array(await r.arrayBuffer());
    print({ status: r.status, bytes: b.length, sha256: require('node:crypto').createHash('sha256').update(b).digest('hex'), ms: performance.now() - t0 });
  })
  .catch((e) => print({ error: String(e.cause?.code ?? e.name) }));
`;

function fetchIn(host: string, url: string, timeoutMs = 60_000): Promise<Fetched> {
  const p = lan.spawnIn(host, process.execPath, ['-e', FETCH, url, String(timeoutMs)]);
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) =>
    p.once('close', (code) => (code === 0 ? resolve(JSON.parse(out) as Fetched) : reject(new Error(`fetch on ${host} exited ${code}: ${err}`)))),
  );
}

test.before(async () => {
  if (missing) return;
  const tmp = await makeTmpDir('neuromfa-lan-');
  tmpDir = tmp.dir;
  lan = await makeLan(['hub', 'w1', 'w2']);
  cleanup = async () => {
    await hub?.stop();
    await lan.remove();
    await tmp.cleanup();
  };
  hub = await startMockHubIn(lan, 'hub');
  fixture = new Uint8Array(await readFile(join(hfFixture('gpt-neox-f32'), 'model.safetensors')));
  await hub.add('lan/fixture', hfFixture('gpt-neox-f32'));
  big = randomBytes(BIG);
  await writeFile(join(tmp.dir, 'big.bin'), big);
  await hub.add('lan/big', tmp.dir);
});

test.after.always(() => cleanup());

lanTest(`each host has its own address on the LAN, and the hub counts what each one read${why}`, async (t) => {
  t.timeout(120_000);
  t.deepEqual(
    ['hub', 'w1', 'w2'].map((h) => lan.ip(h).split('.').at(-1)),
    ['1', '2', '3'],
  );
  t.true(hub.url.startsWith(`http://${lan.ip('hub')}:`), hub.url);
  await hub.counters();
  const [a, b] = await Promise.all([fetchIn('w1', fixtureUrl()), fetchIn('w2', fixtureUrl())]);
  for (const r of [a, b]) t.like(r, { status: 200, bytes: fixture.length, sha256: sha256(fixture) });
  // Two requests each: /resolve/ (302 and its short body) on the hub, then the file on the CDN.
  const redirect = `Found. Redirecting to ${hub.cdnUrl}/blobs/${sha256(fixture)}?epoch=0`.length;
  const counts = await hub.byClient();
  t.deepEqual(counts, {
    [lan.ip('w1')]: { requests: 2, bytes: fixture.length + redirect },
    [lan.ip('w2')]: { requests: 2, bytes: fixture.length + redirect },
  });
});

lanTest(`shape() slows the downloads of one host only${why}`, async (t) => {
  t.timeout(120_000);
  await lan.shape('w1', { rateBytesPerSec: 1_000_000 });
  try {
    const slow = await fetchIn('w1', bigUrl());
    const fast = await fetchIn('w2', bigUrl());
    for (const r of [slow, fast]) t.like(r, { status: 200, bytes: BIG, sha256: sha256(big) });
    // 3 MB at 1 MB/s is ~3 s; unshaped, a veth moves it in milliseconds. Loose on purpose.
    t.true(slow.ms! / fast.ms! > 2, `w1 ${slow.ms} ms vs w2 ${fast.ms} ms`);
  } finally {
    await lan.shape('w1', {});
  }
  const again = await fetchIn('w1', bigUrl());
  t.like(again, { status: 200, bytes: BIG });
});

lanTest(`cut() takes one host off the LAN and restore() brings it back${why}`, async (t) => {
  t.timeout(120_000);
  await lan.cut('w1');
  try {
    const cut = await fetchIn('w1', fixtureUrl(), 3000);
    t.truthy(cut.error, JSON.stringify(cut));
    t.is(cut.status, undefined);
    t.like(await fetchIn('w2', fixtureUrl()), { status: 200, bytes: fixture.length });
  } finally {
    await lan.restore('w1');
  }
  let back: Fetched = {};
  await until('w1 reaches the hub again', async () => (back = await fetchIn('w1', fixtureUrl(), 3000)).status === 200);
  t.like(back, { bytes: fixture.length, sha256: sha256(fixture) });
});

const noNetem = missing ?? netemMissing();
(noNetem ? test.skip : test.serial)(`shape() delays the packets to one host (netem)${noNetem ? ` (${noNetem})` : ''}`, async (t) => {
  t.timeout(120_000);
  await lan.shape('w2', { delayMs: 300 });
  try {
    // The SYN-ACK and the response each cross the delayed direction: at least two delays.
    const r = await fetchIn('w2', `${hub.url}/lan/fixture/resolve/main/config.json`);
    t.is(r.status, 200);
    t.true(r.ms! >= 600, `${r.ms} ms`);
  } finally {
    await lan.shape('w2', {});
  }
});

const noNats = missing ?? natsServerMissing();
(noNats ? test.skip : test.serial)(`a worker on one host joins a JetStream nats-server on another${noNats ? ` (${noNats})` : ''}`, async (t) => {
  t.timeout(120_000);
  const nats = await startNatsIn(lan, 'w2', { jetstream: true, storeDir: join(tmpDir, 'jetstream') });
  let worker: LanWorker | undefined;
  try {
    t.is(nats.url, `nats://${lan.ip('w2')}:4222`);
    t.regex(nats.log(), /Starting JetStream/);
    worker = await startWorkerIn(lan, 'w1', ['--nats', nats.url, '--threads', '1'], { HF_ENDPOINT: hub.url });
    t.like(worker.logs.find((l) => l.msg === 'nats subscribed'), { servers: [nats.url] });
    t.like(worker.logs.at(-1), { msg: 'ready', transports: ['nats'], backend: 'f64' });
  } finally {
    await worker?.kill('SIGKILL');
    await nats.stop();
  }
});
