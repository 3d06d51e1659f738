import test, { type ExecutionContext } from 'ava';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSyntheticNeox } from '../coordinator/demo/synthetic-neox.js';
import { cliIn, startMockHubIn, startNatsIn, startWorkerIn, type LanCli, type LanHub, type LanNats, type LanWorker } from './helpers/lan-cluster.js';
import { natsServerMissing } from './helpers/nats-server.js';
import { lanMissing, makeLan, netemMissing, type Lan } from './helpers/netns-lan.js';
import { makeTmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

/**
 * The cluster does the reading (issue 12), on separate hosts: the mock hub, a JetStream
 * nats-server, two workers and the coordinator each in a network namespace of their own.
 * Workers read the checkpoints from the hub themselves; the coordinator only lists them.
 * Every test breaks something under a live emergence run — a worker killed mid-read, a link
 * cut, a lossy link, the nats-server killed, the coordinator killed — and ends with the
 * numbers of the embedded run, read from the same hub.
 *
 * One LAN and one hub for the file; each test gets a nats-server with a fresh store (hub
 * results are content-addressed: a store kept from an earlier test would answer every shard),
 * fresh workers and fresh caches, and the tests run serially so the hub's counters are theirs.
 */
const missing = lanMissing() ?? natsServerMissing();
const lanTest = missing ? test.skip : test.serial;
const why = missing ? ` (${missing})` : '';
const noNetem = missing ?? netemMissing();

const REPO = 'lan/series';
const CHECKPOINTS = 3;
// One shard per checkpoint: 3 checkpoints for 2 workers (coordinator/analysis/series-on-workers.ts).
const SHARDS = CHECKPOINTS;
const RUN = ['emergence', `hf://${REPO}`, '--revisions', 'all', '--samples', '0-3', '--json', '--threads', '1'];
const RUN_ID = /neuromfa: run (\w+) on JetStream/;

let lan: Lan;
let hub: LanHub;
let tmp = '';
let seq = 0;
let fileBytes = 0;
let cleanup = async () => {};
let embedded: Result;

interface Sample {
  sample: number;
  alpha0: number;
  width: number;
}
interface Result {
  checkpoints: unknown[];
  perCheckpoint: Array<{ label: string; samples: Sample[] }>;
}
interface Status {
  total: number;
  done: number;
  failed: number;
  pending: number;
  redelivered?: number;
}

async function freshDir(name: string): Promise<string> {
  const dir = join(tmp, `${name}-${seq++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** What any host needs to read the hub, with a cache of its own. */
async function hubEnv(name: string): Promise<NodeJS.ProcessEnv> {
  return { HF_ENDPOINT: hub.url, NEUROMFA_CACHE: await freshDir(`cache-${name}`), HF_HUB_CACHE: join(tmp, 'no-hf-cache'), HF_TOKEN: '' };
}

test.before(async () => {
  if (missing) return;
  const t = await makeTmpDir('neuromfa-cluster-reading-');
  tmp = t.dir;
  lan = await makeLan(['hub', 'nats', 'w1', 'w2', 'coord']);
  cleanup = async () => {
    await hub?.stop();
    await lan.remove();
    await t.cleanup();
  };
  hub = await startMockHubIn(lan, 'hub');
  // Tiny checkpoints, each its own seed: a shard reads ~0.5 MB and computes in well under a second.
  for (let i = 0; i < CHECKPOINTS; i++) {
    const dir = join(tmp, `step${i}`);
    await writeSyntheticNeox(dir, { hidden: 128, blocks: 2, vocab: 256, dtype: 'F16', progress: i / (CHECKPOINTS - 1), seed: 21 + i });
    await hub.add(REPO, dir, `step${i}`);
  }
  fileBytes = (await stat(join(tmp, 'step0', 'model.safetensors'))).size;
  const run = await cliIn(lan, 'coord', RUN, await hubEnv('embedded')).done;
  if (run.code !== 0) throw new Error(`the embedded run failed (${run.code}): ${run.stderr}`);
  embedded = JSON.parse(run.stdout) as Result;
});

test.after.always(() => cleanup());

/** The curve and every sample's alpha0 and width, exactly as the embedded run's. */
function sameAsEmbedded(t: ExecutionContext, stdout: string): void {
  const r = JSON.parse(stdout) as Result;
  const samples = (x: Result) => x.perCheckpoint.map((p) => ({ label: p.label, samples: p.samples.map(({ sample, alpha0, width }) => ({ sample, alpha0, width })) }));
  t.deepEqual(r.checkpoints, embedded.checkpoints);
  t.deepEqual(samples(r), samples(embedded));
}

const shardsDone = (w: LanWorker) => w.logs.filter((l) => l.msg === 'shard done').length;

interface Cluster {
  nats: LanNats;
  /** The JetStream store: a restarted server given it finds the queue and the results. */
  store: string;
  w1: LanWorker;
  w2: LanWorker;
  /** `neuromfa emergence … --nats` on `coord`: the embedded run's command line, on the cluster. */
  coordinator: LanCli;
  /** The run's id, as the coordinator printed it. */
  runId(): string;
  /** `neuromfa status RUN --json`, run on `host`. */
  status(host?: string): Promise<Status>;
}

const clusters: Cluster[] = [];

/**
 * A fresh JetStream nats-server on `nats`, a worker on each of `w1` and `w2`, and the
 * coordinator: after the workers (as they usually are: up and waiting), or with
 * `coordinatorFirst` before them, so the workers find the consumer's --ack-wait already set
 * when they start (a worker that took its shard before reads the old one: see the last test).
 */
async function startCluster(name: string, o: { coordinatorFirst?: boolean } = {}): Promise<Cluster> {
  const store = await freshDir(`jetstream-${name}`);
  const nats = await startNatsIn(lan, 'nats', { jetstream: true, storeDir: store });
  const workers = async () => {
    const worker = async (host: string) => startWorkerIn(lan, host, ['--nats', nats.url, '--threads', '1'], await hubEnv(`${name}-${host}`));
    return Promise.all([worker('w1'), worker('w2')]);
  };
  const coordinate = async () => cliIn(lan, 'coord', [...RUN, '--nats', nats.url, '--ack-wait', '3'], await hubEnv(`${name}-coord`));
  let coordinator: LanCli | undefined;
  let w: LanWorker[] = [];
  try {
    if (o.coordinatorFirst) {
      coordinator = await coordinate();
      // Printed once the queue (and its ack wait) is set up.
      await until('the run id on stderr', async () => RUN_ID.test(coordinator!.stderr()) || coordinator!.proc.exitCode !== null);
      w = await workers();
    } else {
      w = await workers();
      coordinator = await coordinate();
    }
  } catch (err) {
    coordinator?.proc.kill('SIGKILL');
    await Promise.all(w.map((x) => x.kill('SIGKILL')));
    await nats.stop();
    throw err;
  }
  const c: Cluster = {
    nats,
    store,
    w1: w[0],
    w2: w[1],
    coordinator,
    runId() {
      const id = RUN_ID.exec(coordinator!.stderr())?.[1];
      if (!id) throw new Error(`no run id printed (yet): ${coordinator!.stderr()}`);
      return id;
    },
    async status(host = 'coord') {
      const r = await cliIn(lan, host, ['status', c.runId(), '--nats', c.nats.url, '--json']).done;
      if (r.code !== 0) throw new Error(`status on ${host} failed (${r.code}): ${r.stderr}`);
      return JSON.parse(r.stdout) as Status;
    },
  };
  clusters.push(c);
  return c;
}

async function stopCluster(c: Cluster): Promise<void> {
  c.coordinator.proc.kill('SIGKILL');
  await Promise.all([c.w1.kill('SIGKILL'), c.w2.kill('SIGKILL')]);
  await c.nats.stop();
}

test.afterEach.always(async () => {
  for (const c of clusters.splice(0)) await stopCluster(c);
  if (!missing) await Promise.all(['w1', 'w2'].map((h) => lan.shape(h, {})));
});

/** Body bytes the hub has sent `host` since the last counters(). */
const bytesTo = async (host: string) => (await hub.byClient())[lan.ip(host)]?.bytes ?? 0;
/** More than any listing, config or safetensors header: the hub is sending weight rows. */
const READING = 32 << 10;

lanTest(`hosts, not ports: each worker reads its checkpoints from the hub, the coordinator only lists them${why}`, async (t) => {
  t.timeout(150_000);
  await hub.counters();
  const c = await startCluster('hosts');
  const run = await c.coordinator.done;
  t.is(run.code, 0, run.stderr);
  sameAsEmbedded(t, run.stdout);

  const counts = await hub.byClient();
  const sent = (host: string) => counts[lan.ip(host)]?.bytes ?? 0;
  // Each worker computed at least one checkpoint's shard, so read its rows over its own address.
  t.true(shardsDone(c.w1) >= 1 && shardsDone(c.w2) >= 1, `w1 ${shardsDone(c.w1)}, w2 ${shardsDone(c.w2)} shards`);
  t.true(sent('w1') > READING, `w1 read ${sent('w1')} bytes`);
  t.true(sent('w2') > READING, `w2 read ${sent('w2')} bytes`);
  // The coordinator listed refs and trees only: no weight bytes at all.
  t.true(sent('coord') > 0 && sent('coord') < fileBytes / 50, `coord read ${sent('coord')} bytes of a ${fileBytes}-byte checkpoint`);
  t.deepEqual(Object.keys(counts).sort(), ['coord', 'w1', 'w2'].map((h) => lan.ip(h)).sort());

  t.like(await c.status(), { total: SHARDS, done: SHARDS, failed: 0 });
  t.is(shardsDone(c.w1) + shardsDone(c.w2), SHARDS);
});

lanTest(`a worker SIGKILLed mid-read: the server gives its shard to the other worker after --ack-wait${why}`, async (t) => {
  t.timeout(150_000);
  // w1 reads slowly, so it is still reading when it is killed.
  await lan.shape('w1', { rateBytesPerSec: 200_000 });
  await hub.counters();
  const c = await startCluster('sigkill');
  await until('w1 reading weights from the hub', async () => (await bytesTo('w1')) > READING);
  await c.w1.kill('SIGKILL');
  t.is(shardsDone(c.w1), 0, 'w1 was killed before it finished a shard');
  const run = await c.coordinator.done;
  t.is(run.code, 0, run.stderr);
  sameAsEmbedded(t, run.stdout);
  // w2 computed its own shards and the one w1 died holding.
  t.is(shardsDone(c.w2), SHARDS);
  t.like(await c.status(), { total: SHARDS, done: SHARDS, failed: 0 });
});

lanTest(`a worker's link cut mid-read and restored mid-run: the same numbers, every shard counted once${why}`, async (t) => {
  t.timeout(150_000);
  // Both read slowly, so the run lasts longer than the cut.
  await Promise.all(['w1', 'w2'].map((h) => lan.shape(h, { rateBytesPerSec: 200_000 })));
  await hub.counters();
  const c = await startCluster('cut');
  await until('w1 reading weights from the hub', async () => (await bytesTo('w1')) > READING);
  await lan.cut('w1');
  try {
    // Two shards done by w2 take longer than --ack-wait: w1's shard has gone back to the queue,
    // and one shard is left, so w1 returns mid-run still holding a shard it may yet store.
    await until('w2 done with two shards', async () => shardsDone(c.w2) >= 2);
  } finally {
    await lan.restore('w1');
  }
  const run = await c.coordinator.done;
  t.is(run.code, 0, run.stderr);
  sameAsEmbedded(t, run.stdout);
  t.like(await c.status(), { total: SHARDS, done: SHARDS, failed: 0 });
  t.is(c.w1.proc.exitCode, null, 'w1 lived through the cut');
});

(noNetem ? test.skip : test.serial)(`200 ms delay and 10% loss on one worker's link: the same numbers${noNetem ? ` (${noNetem})` : ''}`, async (t) => {
  t.timeout(150_000);
  await lan.shape('w1', { delayMs: 200, lossPct: 10 });
  const c = await startCluster('netem');
  const run = await c.coordinator.done;
  t.is(run.code, 0, run.stderr);
  sameAsEmbedded(t, run.stdout);
  t.like(await c.status(), { total: SHARDS, done: SHARDS, failed: 0 });
});

lanTest(`the nats-server killed (-9) and restarted on its store mid-run: the same numbers${why}`, async (t) => {
  t.timeout(150_000);
  // Slow reads on both workers, so shards are still queued or running when the server dies.
  await Promise.all(['w1', 'w2'].map((h) => lan.shape(h, { rateBytesPerSec: 250_000 })));
  const c = await startCluster('nats-kill');
  await until('a shard done', async () => shardsDone(c.w1) + shardsDone(c.w2) >= 1);
  await c.nats.kill();
  const doneAtKill = shardsDone(c.w1) + shardsDone(c.w2);
  t.true(doneAtKill < SHARDS, `killed after ${doneAtKill} of ${SHARDS} shards`);
  const first = c.nats;
  c.nats = await startNatsIn(lan, 'nats', { jetstream: true, storeDir: c.store });
  await first.stop();
  t.is(c.nats.url, first.url);
  const run = await c.coordinator.done;
  t.is(run.code, 0, run.stderr);
  sameAsEmbedded(t, run.stdout);
  t.like(await c.status(), { total: SHARDS, done: SHARDS, failed: 0 });
});

lanTest(`the coordinator SIGKILLed: the workers finish the run, and collect on another host recomputes nothing${why}`, async (t) => {
  t.timeout(150_000);
  // Slow reads, so status catches the run half done. The coordinator comes first: its shards
  // must each be computed once for the count below to stay put (see the last test).
  await Promise.all(['w1', 'w2'].map((h) => lan.shape(h, { rateBytesPerSec: 120_000 })));
  const c = await startCluster('coord-kill', { coordinatorFirst: true });
  let s: Status | undefined;
  await until('some but not all shards done', async () => ((s = await c.status()).done > 0 && s.done < s.total) || s.done === SHARDS);
  t.like(s, { total: SHARDS, failed: 0 });
  t.true(s!.done < SHARDS, `the coordinator was to be killed mid-run, but ${s!.done} of ${SHARDS} shards were done`);
  c.coordinator.proc.kill('SIGKILL');
  t.is((await c.coordinator.done).signal, 'SIGKILL');

  // The workers carry on without any coordinator.
  await until('every shard done', async () => (await c.status()).done === SHARDS);
  t.is(shardsDone(c.w1) + shardsDone(c.w2), SHARDS);

  const collect = await cliIn(lan, 'hub', ['collect', c.runId(), '--nats', c.nats.url], await hubEnv('coord-kill-collect')).done;
  t.is(collect.code, 0, collect.stderr);
  t.regex(collect.stderr, new RegExp(`^neuromfa: collecting run ${c.runId()}: emergence hf://${REPO} `, 'm'));
  sameAsEmbedded(t, collect.stdout);
  t.is(shardsDone(c.w1) + shardsDone(c.w2), SHARDS, 'collect recomputed nothing');
  t.like(await c.status('hub'), { total: SHARDS, done: SHARDS, failed: 0 });
});

/*
 * Regression: workers read the consumer's ack_wait only every 5 s and set a shard's heartbeat
 * from it, so workers up before the coordinator heartbeat every 10 s (a third of the default
 * 30 s) when `--ack-wait 3` arrives with the first shards: a live worker's slow shard went to
 * another worker and was computed twice. They now read it as each shard starts.
 */
(missing ? test.skip : test.serial)(`a live worker keeps its shard past --ack-wait: every shard computed once${why}`, async (t) => {
  t.timeout(150_000);
  // w1's shard takes about 5 s, w2's well under one; --ack-wait is 3 s.
  await lan.shape('w1', { rateBytesPerSec: 80_000 });
  const c = await startCluster('live-worker');
  const run = await c.coordinator.done;
  t.is(run.code, 0, run.stderr);
  sameAsEmbedded(t, run.stdout);
  // w1 finishes the shard it took, redelivered or not.
  await until('w1 done with its shard', async () => shardsDone(c.w1) >= 1);
  t.is(shardsDone(c.w1) + shardsDone(c.w2), SHARDS, `w1 ${shardsDone(c.w1)}, w2 ${shardsDone(c.w2)} shards`);
});
