import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openModel } from '../coordinator/analysis/model-analysis.js';
import { matrixTasks } from '../worker/plan/shard-plan.js';
import { RunJournal } from '../coordinator/run/journal.js';
import type { WorkerDescription } from '../proto/describe.js';
import type { BackendFallback, MfaParams, MfaShardResult, ShardTask } from '../proto/shard.js';
import { GrpcBackend } from '../worker/backends/grpc.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { NatsBackend } from '../worker/backends/nats.js';
import { executeShard } from '../worker/execute-shard.js';
import { AUTO_PRIORITY, BACKEND_NAMES, SUMS_RELATIVE_BOUND, pickBackend, probeBackends, tauErrorBound, type KernelRunner } from '../worker/gpu/index.js';
import { createGpujsRunner, type GpujsMode } from '../worker/gpu/gpujs-runner.js';
import { startWorker } from '../worker/start-worker.js';
import { NatsServer, natsServerMissing } from './helpers/nats-server.js';
import { runCli } from './helpers/run-cli.js';
import { conformanceDir, readJson, repoRoot } from './helpers/shared.js';
import { makeTmpDir } from './helpers/tmp.js';
import { startWorkerProcess } from './helpers/worker-process.js';

/**
 * `--backend` end to end: the CLI's analyze and worker, the pool threads, results, stats,
 * metrics and describe. The float32 backends must agree with f64 within the contract of
 * worker/gpu/precision.ts: tau within its bound for the radius grid and within 1e-6.
 */
const TAU_TARGET = 1e-6;
const model = join(conformanceDir, 'gptneox', 'neox-f16-trained');
const params: MfaParams = readJson(join(conformanceDir, 'cases', 'heterogeneous', 'expected.json')).params;
const version: string = readJson(join(repoRoot, 'package.json')).version;
const statuses = await probeBackends();
const here = new Map(statuses.map((s) => [s.name, s]));
/** What `auto` resolves to on this machine. */
const autoHere = AUTO_PRIORITY.find((n) => here.get(n)!.available)!;
/** Every backend as describe reports it. */
const described = statuses.map((s) => ({ name: s.name, available: s.available, detail: (s.available ? s.device : s.reason)! }));

/** The full NIN of neox-f16-trained in 12 shards (one per matrix): each big enough for the kernel. */
async function fullNinTasks(): Promise<ShardTask[]> {
  const { ckpt, layout } = await openModel(model, 32);
  try {
    return matrixTasks(layout.matrices, ckpt, params, 32 << 20);
  } finally {
    await ckpt.close();
  }
}

const analyzeJson = async (...args: string[]) => {
  const r = await runCli(['analyze', model, '--full', '--json', '--threads', '2', ...args]);
  if (r.code !== 0) throw new Error(`analyze ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
};
const reference = analyzeJson();

test('analyze defaults to f64 and says so: every shard computed in float64', async (t) => {
  const r = await reference;
  t.deepEqual(r.stats.backends, { f64: r.stats.shards });
  t.is(r.stats.shards, 12);
});

for (const mode of ['webasm', 'cpu'] as const) {
  test(`analyze --backend ${mode}: the JSON names it, and tau agrees with f64 within the stated bound`, async (t) => {
    const f64 = await reference;
    const r = await analyzeJson('--backend', mode);
    t.deepEqual(r.stats.backends, { [mode]: 12 }, 'every full-NIN shard of this model is large enough for the kernel');
    t.is(r.stats.edges, f64.stats.edges);
    const a = f64.samples[0];
    const b = r.samples[0];
    t.deepEqual(b.radii, a.radii);
    t.is(b.nodesSelected, a.nodesSelected);
    t.deepEqual(b.q, a.q);
    const bound = Math.min(tauErrorBound(a.radii), TAU_TARGET);
    let worst = 0;
    for (let k = 0; k < a.tau.length; k++) worst = Math.max(worst, Math.abs(b.tau[k] - a.tau[k]));
    t.log(`${mode}: max |Δtau| ${worst.toExponential(2)} (bound ${bound.toExponential(2)}), Δalpha0 ${Math.abs(b.alpha0 - a.alpha0).toExponential(2)}`);
    t.true(worst <= bound, `|Δtau| ${worst} above ${bound}`);
    t.true(worst > 0, 'float32 really ran: not a bit-identical f64 result');
  });
}

test('analyze: an unavailable or unknown backend is one line and exit 2, before any work', async (t) => {
  for (const name of ['webgpu', 'gl'] as const) {
    const s = here.get(name)!;
    if (s.available) {
      t.log(`${name} is available here (${s.device}): its refusal is not testable`);
      continue;
    }
    // A model path that does not exist: the backend is refused before the model is looked at.
    const r = await runCli(['analyze', join(model, 'missing'), '--backend', name]);
    t.is(r.code, 2);
    t.is(r.stdout, '');
    t.is(r.stderr, `neuromfa: backend ${name} is not available here: ${s.reason}\n`);
  }
  const unknown = await runCli(['analyze', model, '--backend', 'cuda']);
  t.is(unknown.code, 2);
  t.is(unknown.stderr, 'neuromfa: --backend must be one of auto, f64, webgpu, gl, webasm, cpu; got "cuda"\n');
  const remote = await runCli(['analyze', model, '--backend', 'webasm', '--workers', 'grpc://127.0.0.1:1']);
  t.is(remote.code, 2);
  t.is(remote.stderr, 'neuromfa: --backend picks where this machine computes; with --workers or --nats each worker uses its own --backend\n');
});

test('mfa --backend webasm agrees with f64; auto resolves to what the registry picks', async (t) => {
  const edges = join(conformanceDir, 'cases', 'heterogeneous', 'edges.npy');
  const run = async (backend: string) => {
    const r = await runCli(['mfa', edges, '--json', '--threads', '1', '--shards', '1', '--backend', backend]);
    t.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const [f64, webasm, auto] = [await run('f64'), await run('webasm'), await run('auto')];
  for (let k = 0; k < f64.tau.length; k++) t.true(Math.abs(webasm.tau[k] - f64.tau[k]) <= Math.min(tauErrorBound(f64.radii), TAU_TARGET));
  if (autoHere === 'f64') t.deepEqual(auto, f64, 'auto is f64 here: bit-identical');
  t.deepEqual(f64.stats.backends, { f64: 1 });
  t.is(Object.keys(webasm.stats.backends).length, 1, 'one shard, one backend named');
});

test('worker --describe: version, threads, the backend it would use and every backend with why', async (t) => {
  const auto = await runCli(['worker', '--describe', '--threads', '3']);
  t.is(auto.code, 0, auto.stderr);
  const d: WorkerDescription = JSON.parse(auto.stdout);
  t.like(d, { version, threads: 3, backend: autoHere, transports: [], readsFiles: false, maxMessageBytes: 64 << 20 });
  t.deepEqual(d.backends, described);
  t.deepEqual(d.backends.map((b) => b.name), [...BACKEND_NAMES]);
  for (const b of d.backends) t.true(b.detail.length > 0, `${b.name} says what it runs on or why not`);

  const named = JSON.parse((await runCli(['worker', '--describe', '--backend', 'webasm', '--grpc', '0.0.0.0:50051', '--model-root', conformanceDir])).stdout);
  t.like(named, { backend: 'webasm', transports: ['grpc'], readsFiles: true });
  if (!here.get('webgpu')!.available) {
    const refused = await runCli(['worker', '--describe', '--backend', 'webgpu']);
    t.is(refused.code, 2);
    t.is(refused.stderr, `neuromfa: backend webgpu is not available here: ${here.get('webgpu')!.reason}\n`);
  }
});

test('a worker started with --backend webasm serves shards that say webasm and equal f64 within the bound', async (t) => {
  const w = await startWorkerProcess(['--grpc', '127.0.0.1:0', '--metrics-port', '0', '--threads', '2', '--backend', 'webasm', '--model-root', conformanceDir]);
  const backend = await GrpcBackend.connect(w.grpcAddress!);
  try {
    t.like(w.logs.find((l) => l.msg === 'ready'), { backend: 'webasm' });
    const d = await backend.describe();
    t.like(d, { backend: 'webasm', threads: 2, transports: ['grpc'] });
    t.deepEqual(d.backends, described, 'gRPC Describe carries every backend with its detail');

    const tasks = await fullNinTasks();
    const reference = new InProcessBackend();
    for (const task of tasks) {
      const got = (await backend.run(task)) as MfaShardResult;
      const want = (await reference.run(task)) as MfaShardResult;
      t.is(got.backend, 'webasm');
      t.is(want.backend, 'f64');
      t.is(got.selected, want.selected);
      t.deepEqual(got.present, want.present);
      let worst = 0;
      for (let x = 0; x < want.sums.length; x++) worst = Math.max(worst, Math.abs(got.sums[x] / want.sums[x] - 1));
      t.true(worst <= SUMS_RELATIVE_BOUND, `shard ${task.id}: relative error ${worst}`);
    }

    const metrics = await w.metrics();
    t.regex(metrics, /^neuromfa_worker_backend_info\{backend="webasm",device="webasm, 1 thread"\} 1$/m);
    t.regex(metrics, new RegExp(`^neuromfa_worker_backend_shards_total\\{backend="webasm"\\} ${tasks.length}$`, 'm'));

    // The coordinator side: analyze over this worker reports where the shards ran.
    const r = await runCli(['analyze', model, '--full', '--json', '--workers', `grpc://${w.grpcAddress}`]);
    t.is(r.code, 0, r.stderr);
    t.deepEqual(JSON.parse(r.stdout).stats.backends, { webasm: 12 });
  } finally {
    await backend.close();
    await w.stop();
  }
});

const natsMissing = natsServerMissing();
(natsMissing ? test.skip : test)('NATS describe reports the same backend and availability as gRPC', async (t) => {
  const server = await NatsServer.start();
  const worker = await startWorker({ threads: 1, maxMessageBytes: 1 << 20, partitionBackend: 'cpu', nats: { servers: server.url, subject: 'neuromfa.backend-flag' } });
  const client = await NatsBackend.connect({ servers: server.url, subject: 'neuromfa.backend-flag' });
  try {
    const [d] = await client.describeAll();
    t.like(d, { backend: 'cpu', transports: ['nats'] });
    t.deepEqual(d.backends, described);
    t.deepEqual(d, worker.service.describe(['nats']));
  } finally {
    await client.close();
    await worker.stop();
    await server.stop();
  }
});
if (natsMissing) console.log(natsMissing);

/** The cpu runner, failing from kernel call `from` on (the self-test makes calls 0 and 1). */
async function failingFrom(from: number): Promise<(mode: GpujsMode) => Promise<KernelRunner>> {
  return async (mode) => {
    const real = await createGpujsRunner('cpu');
    let calls = 0;
    return {
      mode,
      device: 'fault-injected',
      blockSums: (program, call) => (calls++ >= from ? Promise.reject(new Error('device lost (injected)')) : real.blockSums(program, call)),
      close: () => real.close(),
    };
  };
}

test('a backend failing mid-run: executeShard computes that shard on f64, says so once, and the result says f64', async (t) => {
  const tasks = (await fullNinTasks()).slice(0, 4);
  // Calls 0-1: the self-test; 2: the first shard; 3 on: the device is lost.
  const partitionBackend = await pickBackend('webgpu', { createRunner: await failingFrom(3), cpuForwardTerms: 0 });
  const fallbacks: BackendFallback[] = [];
  const onFallback = (f: BackendFallback) => fallbacks.push(f);
  const got = [];
  for (const task of tasks) got.push((await executeShard(task, { partitionBackend, onFallback })) as MfaShardResult);
  await partitionBackend.close();
  t.deepEqual(got.map((r) => r.backend), ['webgpu', 'f64', 'f64', 'f64']);
  t.deepEqual(fallbacks, [{ shard: tasks[1].id, backend: 'webgpu', reason: 'device lost (injected)' }], 'logged where it broke, not on every later shard');
  for (const [k, task] of tasks.entries()) {
    if (k === 0) continue;
    const f64 = (await executeShard(task)) as MfaShardResult;
    t.deepEqual({ ...got[k], seconds: 0 }, { ...f64, seconds: 0 }, `shard ${k}: the fallback is the f64 path itself`);
  }
  // The same through the in-process backend, which passes its options to executeShard.
  const again = await pickBackend('webasm', { createRunner: await failingFrom(2), cpuForwardTerms: 0 });
  const seen: BackendFallback[] = [];
  const r = await new InProcessBackend({ partitionBackend: again, onFallback: (f) => seen.push(f) }).run(tasks[0]);
  await again.close();
  t.is(r.backend, 'f64');
  t.deepEqual(seen, [{ shard: tasks[0].id, backend: 'webasm', reason: 'device lost (injected)' }]);
});

test('without a backend, shards are f64 and bit-identical to the kernel; nfd results say f64', async (t) => {
  const [task] = await fullNinTasks();
  const a = (await executeShard(task)) as MfaShardResult;
  const b = (await executeShard(task, { partitionBackend: await pickBackend('f64') })) as MfaShardResult;
  t.is(a.backend, 'f64');
  t.deepEqual({ ...a, seconds: 0 }, { ...b, seconds: 0 });
  const nfd = await executeShard({ id: 1, measure: 'nfd', params: { threshold: 200, decimals: 0 }, input: { kind: 'groups', weights: Float64Array.of(0.5, 0.1, 0.02), stride: 1, offsets: Uint32Array.of(0, 3) } });
  t.is(nfd.backend, 'f64');
});

test('the resume journal keeps each result\'s backend; old journals read as f64', async (t) => {
  const { dir, cleanup } = await makeTmpDir();
  try {
    const result: MfaShardResult = { id: 5, measure: 'mfa', backend: 'webasm', selected: 2, present: Int32Array.of(3, 9), sums: Float64Array.of(1, 2, 3, 4, 5, 6), nodes: 3, edges: 40, skippedNonFinite: 0, bytesRead: 80, seconds: 0.5 };
    const journal = await RunJournal.open(dir, 'fp', false);
    await journal.save(result);
    await journal.save({ ...result, id: 6 });
    // A shard file from before results named their backend.
    const old = join(dir, 'shards', 'shard-6.json');
    const o = JSON.parse(await readFile(old, 'utf8'));
    delete o.backend;
    await writeFile(old, JSON.stringify(o));
    const resumed = await RunJournal.open(dir, 'fp', true);
    t.deepEqual(resumed.get(5), result);
    t.deepEqual(resumed.get(6), { ...result, id: 6, backend: 'f64' });
  } finally {
    await cleanup();
  }
});
