import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { ClusterBackend, type ClusterEvent } from '../coordinator/dispatch/cluster-backend.js';
import type { ShardResult, ShardTask } from '../proto/shard.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import type { ShardBackend } from '../worker/backends/shard-backend.js';
import { WorkerLostError } from '../worker/backends/worker-lost.js';
import { makeNetnsPair, netnsMissing, startWorkerIn, type NetnsPair, type NetnsWorker } from './helpers/netns.js';
import { faultModel } from './helpers/fault-model.js';
import { until } from './helpers/until.js';
import { runCli, type CliResult } from './helpers/run-cli.js';
import { cliPath, repoRoot } from './helpers/shared.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import { shardsDone, startWorkerProcess, type WorkerProcess } from './helpers/worker-process.js';

/**
 * A gRPC worker cut off mid-run by a network partition — its traffic silently dropped, no FIN,
 * no RST — while the run's --shard-deadline is 600 s: gRPC keepalive must notice within
 * seconds, say so in one line, and the shards go to the other worker. A worker that is down at
 * the start is reported at once. Each run must end with the embedded run's numbers.
 */
const workers: WorkerProcess[] = [];
const proxies: TcpProxy[] = [];
const namespaces: NetnsPair[] = [];
const nsWorkers: NetnsWorker[] = [];
let dir = '';
let cleanup = async () => {};
let model = '';
let embedded: { samples: unknown; stats: { shards: number; edges: number } };
// Shards of 20 KB: well over a hundred, so the cut-off worker holds one when the link dies.
const args = (m = model) => ['analyze', m, '--full', '--json', '--shard-mb', '0.02', '--shard-deadline', '600'];

test.before(async () => {
  ({ dir, cleanup, model, embedded } = await faultModel('neuromfa-partition-', args));
});

test.after.always(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await Promise.all(workers.map((w) => w.kill()));
  await Promise.all(nsWorkers.map((w) => w.kill()));
  for (const ns of namespaces) await ns.remove();
  await cleanup();
});


const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The lines a run printed about `worker` leaving it: exactly one is expected. */
function lostLines(stderr: string, worker: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith(`neuromfa: worker grpc:grpc://${worker} left the run`));
}

const keepaliveLine = (worker: string) =>
  new RegExp(
    `^neuromfa: worker grpc:grpc://${escape(worker)} left the run \\(1 live\\): grpc:grpc://${escape(worker)}: shard \\d+: the worker stopped answering \\(UNAVAILABLE, connection dropped: no answer to a keepalive ping within 20 s, or it closed the connection\\)$`,
  );

function sameNumbers(t: ExecutionContext, r: CliResult): void {
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.deepEqual(out.samples, embedded.samples);
  t.is(out.stats.shards, embedded.stats.shards);
  t.is(out.stats.edges, embedded.stats.edges);
}

async function worker(): Promise<WorkerProcess> {
  const w = await startWorkerProcess(['--threads', '1', '--grpc', '127.0.0.1:0', '--model-root', dir, '--metrics-port', '0']);
  workers.push(w);
  return w;
}

test.serial('a worker whose link goes silent mid-run (a frozen TCP relay) is lost by keepalive in seconds, not at the 600 s deadline; its shards finish elsewhere', async (t) => {
  t.timeout(100_000);
  const [cut, steady] = [await worker(), await worker()];
  const proxy = await startTcpProxy({ port: cut.grpcPort! });
  proxies.push(proxy);
  const run = runCli([...args(), '--workers', `grpc://${proxy.address},grpc://${steady.grpcAddress}`]);
  await until('shards done behind the relay', async () => (await shardsDone(cut)) >= 3);
  proxy.freeze();
  const r = await run;
  sameNumbers(t, r);
  const lost = lostLines(r.stderr, proxy.address);
  t.is(lost.length, 1, r.stderr);
  t.regex(lost[0], keepaliveLine(proxy.address));
  t.false(r.stderr.includes(`${steady.grpcAddress} left the run`), r.stderr);
});

test.serial('a worker down at the start is reported at once (refused) or after 2 s (silent); the silent one joins the run when it answers', async (t) => {
  t.timeout(100_000);
  const [late, steady] = [await worker(), await worker()];
  const proxy = await startTcpProxy({ port: late.grpcPort! });
  proxies.push(proxy);
  proxy.freeze();
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
  const refused = `127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise((r) => closed.close(r));
  const coordinator = spawn(process.execPath, [cliPath, ...args(), '--workers', [refused, proxy.address, steady.grpcAddress].map((a) => `grpc://${a}`).join(',')], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  coordinator.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  coordinator.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = new Promise<number | null>((r) => coordinator.once('close', r));
  await until('the silent worker reported', async () => stderr.includes(`worker grpc:grpc://${proxy.address} left the run`));
  proxy.thaw();
  sameNumbers(t, { code: (await code) ?? -1, stdout, stderr });
  t.regex(stderr, new RegExp(`^neuromfa: worker grpc:grpc://${escape(refused)} left the run \\(\\d live\\): grpc:grpc://${escape(refused)}: Describe: not reachable: UNAVAILABLE .*connect ECONNREFUSED ${escape(refused)}`, 'm'));
  t.regex(stderr, new RegExp(`^neuromfa: worker grpc:grpc://${escape(proxy.address)} left the run \\(1 live\\): grpc:grpc://${escape(proxy.address)}: no answer within 2 s; it joins the run when it answers$`, 'm'));
  t.true((await shardsDone(late)) > 0, 'the late worker took shards once it answered');
});

/** A worker that is lost (WorkerLostError) while `down`, and says when it is back. */
class FlakyLink implements ShardBackend {
  readonly name = 'flaky';
  readonly concurrency = 2;
  down = false;
  calls = 0;
  private readonly kernel = new InProcessBackend();
  private back?: () => void;
  async run(task: ShardTask): Promise<ShardResult> {
    this.calls++;
    // Both shards in flight fail together, as when one connection drops.
    await new Promise((r) => setTimeout(r, 20));
    if (this.down) throw new WorkerLostError(`flaky: shard ${task.id}: the worker stopped answering`);
    return this.kernel.run(task);
  }
  whenReachable(): Promise<void> {
    return new Promise((r) => (this.back = r));
  }
  comeBack(): void {
    this.down = false;
    this.back?.();
  }
  async close(): Promise<void> {}
}

test('a lost worker is set aside at once (one report for all its shards), its shards go elsewhere, and it rejoins when it answers', async (t) => {
  const weights = Float64Array.from({ length: 400 }, (_, k) => 1 / (1.2 + ((k * 7.31) % 140)));
  const task = (id: number): ShardTask => ({ id, measure: 'mfa', params: { threshold: 150, decimals: 1, minNeighbors: 5, q: [0, 1] }, input: { kind: 'groups', weights, stride: 1, offsets: Uint32Array.of(0, 200, 400) } });
  const flaky = new FlakyLink();
  flaky.down = true;
  const steady = new InProcessBackend();
  const events: ClusterEvent[] = [];
  const cluster = new ClusterBackend([flaky, steady], { inFlightPerWorker: 2, maxWorkerFailures: 100, backoff: { baseMs: 1 }, onEvent: (e) => events.push(e) });
  const first = await Promise.all([1, 2, 3, 4].map((id) => cluster.run(task(id))));
  t.deepEqual(first.map((r) => r.id), [1, 2, 3, 4]);
  t.deepEqual(events.filter((e) => e.type === 'worker-lost'), [{ type: 'worker-lost', worker: 'flaky', reason: 'flaky: shard 1: the worker stopped answering', live: 1 }]);
  t.is(cluster.workers, 1);
  const lostCalls = flaky.calls;
  // Four shards started in one tick spread by load, two each (they all went to the first
  // worker before acquire() counted a pick at once).
  t.is(lostCalls, 2, 'two shards failed with it, no more were sent to it');
  flaky.comeBack();
  await new Promise((r) => setImmediate(r));
  t.deepEqual(events.at(-1), { type: 'workers', live: 2 });
  await Promise.all([5, 6, 7, 8].map((id) => cluster.run(task(id))));
  t.true(flaky.calls > lostCalls, 'shards go to it again');
  await cluster.close();
});

test('a shard sent to a worker that accepts TCP but never speaks gRPC gives up after 10 s, not at its deadline', async (t) => {
  const w = await worker();
  const proxy = await startTcpProxy({ port: w.grpcPort! });
  proxies.push(proxy);
  proxy.freeze();
  const { GrpcBackend } = await import('../worker/backends/grpc.js');
  const backend = new GrpcBackend(proxy.address, { deadlineMs: 90_000 });
  const weights = Float64Array.from({ length: 100 }, (_, k) => 1 / (1.2 + k));
  const task: ShardTask = { id: 3, measure: 'mfa', params: { threshold: 150, decimals: 1, minNeighbors: 5, q: [0, 1] }, input: { kind: 'groups', weights, stride: 1, offsets: Uint32Array.of(0, 50, 100) } };
  try {
    await t.throwsAsync(backend.run(task), { instanceOf: WorkerLostError, message: `grpc:${proxy.address}: shard 3: not reachable: no connection within 10 s` });
  } finally {
    await backend.close();
  }
});

/** The CLI inside a namespace; resolves like runCli. */
function runIn(pair: NetnsPair, ns: string, args: string[]): Promise<CliResult> {
  const proc = pair.spawnIn(ns, process.execPath, [cliPath, ...args]);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => proc.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

const noNetns = netnsMissing();
(noNetns ? test.skip : test.serial)(
  `a worker in another network namespace whose link goes down mid-run is lost by keepalive; its shards finish elsewhere${noNetns ? ` (${noNetns})` : ''}`,
  async (t) => {
    t.timeout(100_000);
    const pair = await makeNetnsPair();
    namespaces.push(pair);
    // Only the cut worker is across the link; the coordinator and the steady worker share a namespace.
    const cut = await startWorkerIn(pair, pair.worker, ['--threads', '1', '--grpc', `${pair.workerIp}:0`, '--model-root', dir]);
    const steady = await startWorkerIn(pair, pair.coordinator, ['--threads', '1', '--grpc', '127.0.0.1:0', '--model-root', dir]);
    nsWorkers.push(cut, steady);
    const cutAddress = `${pair.workerIp}:${cut.grpcPort}`;
    const run = runIn(pair, pair.coordinator, [...args(), '--workers', `grpc://${cutAddress},grpc://127.0.0.1:${steady.grpcPort}`]);
    await until('shards done across the link', async () => cut.logs.filter((l) => l.msg === 'shard done').length >= 3);
    await pair.cut();
    const r = await run;
    sameNumbers(t, r);
    const lost = lostLines(r.stderr, cutAddress);
    t.is(lost.length, 1, r.stderr);
    t.regex(lost[0], keepaliveLine(cutAddress));
    t.false(r.stderr.includes(`127.0.0.1:${steady.grpcPort} left the run`), r.stderr);
  },
);
