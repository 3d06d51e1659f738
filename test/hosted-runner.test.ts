import test from 'ava';
import { randomUUID } from 'node:crypto';
import { mfaOfGroups } from '../coordinator/analysis/edge-analysis.js';
import type { BackendFallback } from '../proto/shard.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { PiscinaBackend } from '../worker/backends/piscina.js';
import { probeBackend } from '../worker/gpu/backends.js';
import { GpuPartitionSums } from '../worker/gpu/partition-sums-gpu.js';
import { createGpujsRunner, type GpujsMode, type KernelRunner } from '../worker/gpu/gpujs-runner.js';
import { blockSumsProgram } from '../worker/gpu/block-sums-program.js';
import { HOSTED_MODES, hostRunner, hostedRunner } from '../worker/gpu/hosted-runner.js';
import { edgesFromColumns } from '../worker/io/edge-list.js';
import { boxMassFromGroups } from '../worker/kernel/box-mass.js';
import { lcg } from '../worker/kernel/lcg.js';
import { partitionSums } from '../worker/kernel/partition-sums.js';
import { groupBySource } from '../worker/plan/edge-groups.js';

/**
 * A hosted runner (the main thread owns the device, threads send kernel calls) must give what
 * the runner gives when called directly, bit for bit, and its failures must reach the
 * thread's fallback to f64. gpu.js's cpu and webasm modes stand in for webgpu, which is the
 * only mode hosted by default (Dawn allows one isolate per process).
 */
const q = Float64Array.from({ length: 61 }, (_, k) => (k - 30) / 10);
const forced = { cpuForwardTerms: 0, maxDenseRatio: Infinity };

function denseGroups(nodes: number, degree: number, seed: number) {
  const rand = lcg(seed);
  const edges = nodes * degree;
  const src = new Float64Array(edges);
  const dst = new Float64Array(edges);
  const w = new Float64Array(edges);
  for (let e = 0; e < edges; e++) {
    src[e] = Math.floor(e / degree);
    dst[e] = nodes + (e % degree);
    w[e] = 1 / (1.5 + 138.5 * rand());
  }
  return groupBySource(edgesFromColumns(src, dst, w));
}

test('only webgpu is hosted by default', (t) => {
  t.deepEqual([...HOSTED_MODES], ['webgpu']);
});

test('a hosted runner gives the direct runner’s sums bit for bit, and the host counts its calls', async (t) => {
  const channel = `test-${randomUUID()}`;
  const host = hostRunner(channel, 'cpu', createGpujsRunner);
  const hosted = new GpuPartitionSums(hostedRunner(channel, 'cpu', 'hosted cpu'), forced);
  const direct = new GpuPartitionSums(await createGpujsRunner('cpu'), forced);
  try {
    const groups = denseGroups(300, 48, 7);
    const box = boxMassFromGroups(groups.weights, groups.offsets, { threshold: 150, decimals: 0 });
    const a = await direct.partitionSums(box, q, 10);
    const b = await hosted.partitionSums(box, q, 10);
    t.is(b.backend, 'cpu', `ran on ${b.backend}: ${b.fallbackReason}`);
    t.deepEqual(b.sums, a.sums);
    t.deepEqual(b.present, a.present);
    t.is(b.selected, a.selected);
    t.true(host.calls >= 1);
    t.is(hosted.runner.device, 'hosted cpu');
  } finally {
    await hosted.close();
    await direct.close();
    await host.close();
  }
});

test('a host whose device cannot open fails each call, and the shard falls back to f64 saying why', async (t) => {
  const channel = `test-${randomUUID()}`;
  const open = async (mode: GpujsMode): Promise<KernelRunner> => {
    throw new Error(`no ${mode} device (injected)`);
  };
  const host = hostRunner(channel, 'webgpu', open);
  const hosted = new GpuPartitionSums(hostedRunner(channel, 'webgpu', 'nowhere'), forced);
  try {
    const groups = denseGroups(100, 40, 8);
    const box = boxMassFromGroups(groups.weights, groups.offsets, { threshold: 150, decimals: 0 });
    const got = await hosted.partitionSums(box, q, 10);
    const ref = partitionSums(box, q, 10);
    t.is(got.backend, 'f64');
    t.is(got.fallbackKind, 'failed');
    t.is(got.fallbackReason, 'no webgpu device (injected)');
    t.deepEqual(got.sums, ref.sums);
    t.is(host.calls, 1);
  } finally {
    await hosted.close();
    await host.close();
  }
});

test('a calling runner that is closed refuses, and one closed mid-call rejects what is in flight', async (t) => {
  const channel = `test-${randomUUID()}`;
  const runner = hostedRunner(channel, 'webgpu', 'nowhere'); // no host: the call waits
  const program = { name: 'p', cacheKey: 'p/v1', source: 'function () { return 0; }', constants: {} };
  const call = { nAt: new Float32Array(1), table: new Float32Array(1), inv: new Float32Array(1), rows: 1, tableStride: 1, Q: 1, blocks: 1 };
  const inFlight = runner.blockSums(program, call);
  await runner.close();
  await t.throwsAsync(inFlight, { message: 'webgpu runner closed with calls in flight' });
  await t.throwsAsync(runner.blockSums(program, call), { message: 'webgpu runner is closed' });
});

test('a pool whose main thread hosts the device gives the same spectrum as threads that own theirs', async (t) => {
  const groups = denseGroups(2400, 64, 9);
  const params = { threshold: 150, decimals: 0, minNeighbors: 10, q: Array.from(q) };
  const own = new PiscinaBackend(2, { partitionBackend: 'webasm' });
  const hosted = new PiscinaBackend(2, { partitionBackend: 'webasm', partitionDevice: 'webasm, hosted', hostedModes: ['webasm'] });
  try {
    t.is(own.gpuHost, undefined);
    const a = await mfaOfGroups(groups, params, own, 4);
    const b = await mfaOfGroups(groups, params, hosted, 4);
    t.deepEqual(a.stats.backends, { webasm: 4 }, 'the shards are large enough for the kernel');
    t.deepEqual(b.stats.backends, { webasm: 4 });
    t.deepEqual(b.spectrum, a.spectrum);
    // Each thread's self-test and every shard's chunks went through the host.
    t.true(hosted.gpuHost!.calls >= 4 + 2 * 2, `${hosted.gpuHost!.calls} calls`);
  } finally {
    await own.close();
    await hosted.close();
  }
});

test('a host closed while a call runs finishes it quietly, answers nothing more, and closes its runner', async (t) => {
  const channel = `test-${randomUUID()}`;
  let started!: () => void;
  const openStarted = new Promise<void>((r) => (started = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let runnerClosed = false;
  const open = async (mode: GpujsMode): Promise<KernelRunner> => {
    started();
    await released;
    const real = await createGpujsRunner('cpu');
    return { mode, device: 'slow', blockSums: (p, c) => real.blockSums(p, c), close: async () => { runnerClosed = true; await real.close(); } };
  };
  const host = hostRunner(channel, 'cpu', open);
  const runner = hostedRunner(channel, 'cpu', 'slow');
  const call = { nAt: Float32Array.of(1, 1, 1, 1), table: Float32Array.of(0, 1), inv: Float32Array.of(1, 1, 1, 1), rows: 1, tableStride: 2, Q: 1, blocks: 1 };
  const first = runner.blockSums(blockSumsProgram(4), call);
  const second = runner.blockSums(blockSumsProgram(4), call);
  await openStarted; // the host is inside the first call
  const closing = host.close();
  release();
  await t.notThrowsAsync(closing);
  t.is(host.calls, 1, 'the call in progress finished; the queued one was dropped');
  t.true(runnerClosed);
  await runner.close();
  await t.throwsAsync(first, { message: 'cpu runner closed with calls in flight' });
  await t.throwsAsync(second, { message: 'cpu runner closed with calls in flight' });
});

test('a pool thread that cannot open the chosen backend computes on f64 and says why, once per thread', async (t) => {
  // The main thread vouched for the backend; here gl cannot open on the thread (nor anywhere on this machine).
  const gl = await probeBackend('gl');
  if (gl.available) {
    t.log(`gl opens here (${gl.device}): the thread would open it too`);
    t.pass();
    return;
  }
  const fallbacks: BackendFallback[] = [];
  const pool = new PiscinaBackend(1, { partitionBackend: 'gl', onFallback: (f) => fallbacks.push(f) });
  try {
    const groups = denseGroups(2400, 64, 10);
    const params = { threshold: 150, decimals: 0, minNeighbors: 10, q: Array.from(q) };
    const got = await mfaOfGroups(groups, params, pool, 3);
    const ref = await mfaOfGroups(groups, params, new InProcessBackend(), 3);
    t.deepEqual(got.stats.backends, { f64: 3 });
    t.deepEqual(got.spectrum, ref.spectrum);
    t.is(fallbacks.length, 1);
    t.like(fallbacks[0], { backend: 'gl', reason: `backend gl is not available here: ${gl.reason}` });
  } finally {
    await pool.close();
  }
});
