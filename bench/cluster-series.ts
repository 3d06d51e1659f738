import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSyntheticNeox } from '../coordinator/demo/synthetic-neox.js';
import { startMockHubIn, startNatsIn, startWorkerIn, type ClientCounts, type LanHub, type LanNats, type LanWorker } from '../test/helpers/lan-cluster.js';
import { lanMissing, makeLan, netemMissing, type Lan } from '../test/helpers/netns-lan.js';
import { natsServerMissing } from '../test/helpers/nats-server.js';
import { repoRoot } from '../test/helpers/shared.js';

/**
 * An emergence series read from the hub by a cluster, each process on a host of its own
 * (test/helpers/netns-lan.ts): the mock hub on `hub`, nats-server with JetStream on `nats`,
 * the CLI on `coordinator`, workers on w1..wN. Every client host downloads at `bytesPerSec`
 * (tbf on its link) and the hub answers every request `rttMs` late (the kernel here may lack
 * netem, so the latency is the hub's). The repository holds `checkpoints` distinct
 * pythia-410m-shaped F16 checkpoints as branches step0..step{N-1}.
 *
 * Per worker count W: W workers that read the checkpoints themselves, then one run with
 * `--ship-bytes` on the largest W, where the coordinator reads every byte over its one link.
 * Each run gets a fresh nats-server store and fresh NEUROMFA_CACHE directories, so nothing
 * is cached between runs. Seconds are the CLI's whole process; requests and bytes are what
 * the hub served, in total and per host.
 */

export interface Row {
  label: string;
  mode: 'workers-read' | 'coordinator-reads';
  workers: number;
  seconds: number;
  requests: number;
  bytes: number;
  /** By host name (coordinator, w1, ...). */
  byClient: ClientCounts;
  coordinatorRssMB: number;
  /** Resident memory of the mock hub, which holds every checkpoint. */
  hubRssMB: number;
  /** Set when the run failed: its last stderr line; the numbers are then NaN. */
  error?: string;
}

export interface ClusterSeriesOptions {
  workers: number[];
  checkpoints: number;
  samples: string;
  rttMs: number;
  bytesPerSec: number;
}

const REPO = 'bench/pythia-410m-shaped';
/** Generated once and reused: ~810 MB a checkpoint. */
const seriesCacheDir = join(tmpdir(), 'neuromfa-bench-410m-series');

export async function clusterSeriesBench(o: ClusterSeriesOptions, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<Row[]> {
  const missing = lanMissing() ?? natsServerMissing();
  if (missing) throw new Error(`cluster series bench cannot run: ${missing}`);
  if (o.workers.length === 0 || o.workers.some((w) => !Number.isInteger(w) || w < 1)) throw new Error(`workers must be positive integers, got ${o.workers.join(',')}`);
  if (!Number.isInteger(o.checkpoints) || o.checkpoints < 2) throw new Error(`checkpoints must be an integer >= 2 (emergence needs two), got ${o.checkpoints}`);
  if (netemMissing()) log(`no netem here, the hub adds the ${o.rttMs} ms: ${netemMissing()}`);
  const dirs: string[] = [];
  for (let i = 0; i < o.checkpoints; i++) dirs.push(await checkpoint(i, log));

  const most = Math.max(...o.workers);
  const workerHosts = Array.from({ length: most }, (_, i) => `w${i + 1}`);
  const lan = await makeLan(['hub', 'nats', 'coordinator', ...workerHosts]);
  let hub: LanHub | undefined;
  try {
    hub = await startMockHubIn(lan, 'hub');
    for (const [i, dir] of dirs.entries()) {
      log(`loading step${i} into the mock hub ...`);
      await hub.add(REPO, dir, `step${i}`);
    }
    const hubRssMB = (await hub.rssBytes()) / 2 ** 20;
    log(`mock hub holds ${o.checkpoints} checkpoints: RSS ${hubRssMB.toFixed(0)} MB`);
    await hub.link(o.rttMs);
    for (const h of ['coordinator', ...workerHosts]) await lan.shape(h, { rateBytesPerSec: o.bytesPerSec });
    const rows: Row[] = [];
    const run = async (workers: number, mode: Row['mode']) => {
      const row = await timedRun(lan, hub!, workerHosts.slice(0, workers), mode, o.samples, log);
      rows.push({ ...row, hubRssMB });
      log(`${row.label}: ${row.error ?? `${row.seconds.toFixed(1)} s, ${row.requests} requests, ${(row.bytes / 1e6).toFixed(1)} MB`}`);
    };
    for (const w of o.workers) await run(w, 'workers-read');
    await run(most, 'coordinator-reads');
    return rows;
  } finally {
    await hub?.stop();
    await lan.remove();
  }
}

/**
 * Checkpoint i: its own seed, so no two share bytes (a shared file would be read once), and
 * weights moved i/11 of the way from initialisation to heavy-tailed, a 12-step training run.
 */
async function checkpoint(i: number, log: (line: string) => void): Promise<string> {
  const seed = 1000 + i;
  const progress = Math.min(1, i / 11);
  const dir = join(seriesCacheDir, `seed${seed}-progress${progress.toFixed(4)}`);
  // config.json is written after the weights: its presence means the checkpoint is whole.
  if (existsSync(join(dir, 'config.json'))) return dir;
  log(`generating ${dir} ...`);
  await mkdir(seriesCacheDir, { recursive: true });
  await writeSyntheticNeox(dir, { hidden: 1024, blocks: 24, vocab: 50304, dtype: 'F16', progress, seed });
  return dir;
}

/** One emergence run on a fresh nats-server and fresh caches, timed as a whole process. */
async function timedRun(lan: Lan, hub: LanHub, hosts: string[], mode: Row['mode'], samples: string, log: (line: string) => void): Promise<Omit<Row, 'hubRssMB'>> {
  const label = mode === 'workers-read' ? `${hosts.length} worker${hosts.length > 1 ? 's' : ''} read the hub` : `coordinator reads, ships bytes to ${hosts.length} worker${hosts.length > 1 ? 's' : ''}`;
  const runDir = await mkdtemp(join(tmpdir(), 'neuromfa-series-run-'));
  // An empty HF_HUB_CACHE: a checkpoint the user has downloaded must not be read from disk.
  const env = (name: string) => ({ HF_ENDPOINT: hub.url, NEUROMFA_CACHE: join(runDir, `cache-${name}`), HF_HUB_CACHE: join(runDir, 'no-hf-cache'), HF_TOKEN: '' });
  let nats: LanNats | undefined;
  const workers: LanWorker[] = [];
  try {
    nats = await startNatsIn(lan, 'nats', { jetstream: true, storeDir: join(runDir, 'jetstream') });
    log(`${label}: starting ${hosts.length} worker(s) ...`);
    for (const h of hosts) workers.push(await startWorkerIn(lan, h, ['--nats', nats.url, '--threads', '1'], env(h), { readyTimeoutMs: 60_000 }));
    await hub.counters();
    const args = ['emergence', `hf://${REPO}`, '--revisions', 'all', '--samples', samples, '--nats', nats.url, '--json', ...(mode === 'coordinator-reads' ? ['--ship-bytes'] : [])];
    const r = await runIn(lan, 'coordinator', args, env('coordinator'));
    const byAddress = await hub.byClient();
    const totals = await hub.counters();
    const names = new Map(lan.hosts.map((h) => [lan.ip(h), h]));
    const byClient = Object.fromEntries(Object.entries(byAddress).map(([addr, c]) => [names.get(addr) ?? addr, c]));
    const failed = r.code !== 0 ? `exit ${r.code}: ${r.stderr.trim().split('\n').filter((l) => !l.startsWith('__maxrss_kb=')).at(-1) ?? ''}` : undefined;
    return {
      label,
      mode,
      workers: hosts.length,
      seconds: failed ? NaN : r.seconds,
      requests: totals.requests,
      bytes: totals.bytes,
      byClient,
      coordinatorRssMB: r.maxRssMB,
      ...(failed ? { error: failed } : {}),
    };
  } finally {
    await Promise.all(workers.map(stopWorker));
    await nats?.stop();
    await rm(runDir, { recursive: true, force: true });
  }
}

/** SIGTERM drains a worker; one still busy after 30 s is killed, so a stuck run cannot hang the bench. */
async function stopWorker(w: LanWorker): Promise<void> {
  const killer = setTimeout(() => void w.kill('SIGKILL'), 30_000);
  await w.kill('SIGTERM');
  clearTimeout(killer);
}

/** `neuromfa ARGS` on `host` through bench/child.js (which reports its peak RSS). */
function runIn(lan: Lan, host: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; seconds: number; maxRssMB: number; stderr: string }> {
  const started = performance.now();
  const p = lan.spawnIn(host, process.execPath, [join(repoRoot, 'dist', 'bench', 'child.js'), ...args], { env });
  let err = '';
  p.stdout!.resume();
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) =>
    p.once('close', (code) => {
      const rss = /__maxrss_kb=(\d+)/.exec(err);
      resolve({ code, seconds: (performance.now() - started) / 1000, maxRssMB: rss ? Number(rss[1]) / 1024 : NaN, stderr: err });
    }),
  );
}

/**
 * Part of `npm run bench -- cluster`: a 12-checkpoint series at 30 ms / 25 MB/s per host link,
 * read by 1, 2 and 4 workers, and by the coordinator (--ship-bytes) for comparison. Ten
 * samples, as a study runs them: most of each file is read, so the links bound the run
 * (NEUROMFA_BENCH_SERIES_SAMPLES=0 shows the other regime, where requests and CPU do).
 */
export async function benchClusterSeries(say: (line: string) => void, log: (line: string) => void): Promise<void> {
  const o = { workers: [1, 2, 4], checkpoints: 12, samples: process.env.NEUROMFA_BENCH_SERIES_SAMPLES ?? '0-9', rttMs: 30, bytesPerSec: 25e6 };
  const rows = await clusterSeriesBench(o, log);
  const one = rows.find((r) => r.mode === 'workers-read' && r.workers === 1)?.seconds ?? NaN;
  const shipped = rows.find((r) => r.mode === 'coordinator-reads')?.seconds ?? NaN;
  say(`cluster series: ${o.checkpoints} pythia-410m-shaped F16 checkpoints from the mock hub, --samples ${o.samples}, ${o.rttMs} ms / ${o.bytesPerSec / 1e6} MB/s per host link`);
  say('| run | seconds | vs 1 worker | vs coordinator reads | requests | MB served | MB per host | coordinator peak RSS MB |');
  say('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const perHost = Object.entries(r.byClient)
      .map(([h, c]) => `${h} ${(c.bytes / 1e6).toFixed(0)}`)
      .join(', ');
    say(`| ${r.label}${r.error ? ` (failed: ${r.error})` : ''} | ${r.seconds.toFixed(1)} | ${(one / r.seconds).toFixed(2)}× | ${(shipped / r.seconds).toFixed(2)}× | ${r.requests} | ${(r.bytes / 1e6).toFixed(0)} | ${perHost} | ${r.coordinatorRssMB.toFixed(0)} |`);
  }
}
