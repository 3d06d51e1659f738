import test from 'ava';
import { createRequire } from 'node:module';
import { NeuromfaError, UsageError } from '../proto/errors.js';
import { boxMassFromGroups, type BoxMass } from '../worker/kernel/box-mass.js';
import { partitionSums } from '../worker/kernel/partition-sums.js';
import {
  AUTO_PRIORITY,
  BACKEND_NAMES,
  BackendUnavailableError,
  GpuPartitionSums,
  available,
  parseBackend,
  pickBackend,
  planShard,
  probeBackends,
  tauErrorBound,
  type BackendStatus,
  type KernelRunner,
} from '../worker/gpu/index.js';
import { blockSumsProgram } from '../worker/gpu/block-sums-program.js';
import { shardLayout } from '../worker/gpu/dense-layout.js';
import { createGpujsRunner, type BlockSumsCall, type GpujsMode } from '../worker/gpu/gpujs-runner.js';
import { acceptErrorHandler } from '../worker/gpu/webgpu-node.js';
import { lcg } from '../worker/kernel/lcg.js';

/** Backend selection, the typed errors, CPU forwarding and the fallback to f64. */
const q = Float64Array.from({ length: 61 }, (_, k) => (k - 30) / 10);
const statuses = await probeBackends();
const here = new Map(statuses.map((s) => [s.name, s]));

const rand = lcg(99);

/** nodes × degree distances uniform in (1.5, 140): dense in buckets, like a full-NIN shard. */
function denseBox(nodes: number, degree: number): BoxMass {
  const w = Float64Array.from({ length: nodes * degree }, () => 1 / (1.5 + 138.5 * rand()));
  return boxMassFromGroups(w, Uint32Array.from({ length: nodes + 1 }, (_, i) => i * degree), { threshold: 150, decimals: 0 });
}

/** The cpu runner, wrapped: `fail(call)` decides per call whether it throws instead. */
async function faulty(mode: GpujsMode, fail: (call: number) => boolean, corrupt = false): Promise<KernelRunner & { calls: number }> {
  const real = await createGpujsRunner('cpu');
  const runner = {
    mode,
    device: 'fault-injected',
    calls: 0,
    async blockSums(program: ReturnType<typeof blockSumsProgram>, call: BlockSumsCall) {
      if (fail(runner.calls++)) throw new Error('device lost (injected)');
      const out = await real.blockSums(program, call);
      if (corrupt && call.rows > 8) return Array.from(out, (b) => Array.from(b, (r) => Float32Array.from(r, (v) => v * 1.5)));
      return out;
    },
    close: () => real.close(),
  };
  return runner;
}

test('the registry knows every backend and tries them for auto in order', (t) => {
  t.deepEqual([...BACKEND_NAMES], ['f64', 'webgpu', 'gl', 'webasm', 'cpu']);
  // webasm is slower than f64 on the CPU it shares (bench/gpu.ts): by name only.
  // webgpu too: slower than f64 in whole runs on a real GPU (bench/RESULTS.md, H200).
  t.deepEqual([...AUTO_PRIORITY], ['gl', 'f64']);
  t.is(parseBackend('auto'), 'auto');
  t.is(parseBackend('webasm'), 'webasm');
  const err = t.throws(() => parseBackend('cuda'), { instanceOf: UsageError });
  t.regex(err!.message, /--backend must be one of auto, f64, webgpu, gl, webasm, cpu; got "cuda"/);
});

test('probes report every backend; f64 always runs; each unavailable one says why', async (t) => {
  t.deepEqual(statuses.map((s) => s.name), [...BACKEND_NAMES]);
  t.true(here.get('f64')!.available);
  t.true(here.get('cpu')!.available, 'gpu.js cpu mode runs anywhere');
  for (const s of statuses) {
    if (s.available) t.truthy(s.device);
    else t.true(typeof s.reason === 'string' && s.reason.length > 0, `${s.name} has no reason`);
    t.log(s.available ? `${s.name}: available (${s.device})` : `${s.name}: unavailable: ${s.reason}`);
  }
  t.deepEqual(await available(), statuses.filter((s) => s.available).map((s) => s.name));
});

test('f64 is the reference path, bit for bit', async (t) => {
  const box = denseBox(50, 400);
  const b = await pickBackend('f64');
  const got = await b.partitionSums(box, q, 10);
  const ref = partitionSums(box, q, 10);
  t.is(got.backend, 'f64');
  t.is(got.fallbackReason, undefined);
  t.deepEqual(got.sums, ref.sums);
  t.deepEqual(got.present, ref.present);
  await b.close();
});

test('auto picks the first available of gl > f64 and says what it passed over', async (t) => {
  const b = await pickBackend('auto');
  const expected = AUTO_PRIORITY.find((n) => here.get(n)!.available)!;
  t.is(b.name, expected);
  const skipped = AUTO_PRIORITY.slice(0, AUTO_PRIORITY.indexOf(expected));
  t.deepEqual(b.passedOver.map((s: BackendStatus) => s.name), skipped);
  for (const s of b.passedOver) t.is(s.reason, here.get(s.name)!.reason);
  t.log(`auto → ${b.name} (${b.device})`);
  await b.close();
});

for (const name of ['webgpu', 'gl', 'webasm'] as const) {
  test(`forcing ${name} when unavailable throws a typed error naming it and why`, async (t) => {
    const s = here.get(name)!;
    if (s.available) {
      t.log(`not testable with the real ${name}: it is available on this machine (${s.device})`);
      t.pass();
      return;
    }
    const err = await t.throwsAsync(pickBackend(name), { instanceOf: BackendUnavailableError });
    t.is(err!.backend, name);
    t.is(err!.reason, s.reason!);
    t.is(err!.code, 'BACKEND_UNAVAILABLE');
    t.true(err instanceof UsageError && err instanceof NeuromfaError);
    t.regex(err!.message, new RegExp(`^backend ${name} is not available here: `));
  });
}

test('a backend whose runner cannot start is unavailable, and auto falls through to f64', async (t) => {
  const createRunner = async (mode: GpujsMode): Promise<KernelRunner> => {
    throw new Error(`no ${mode} device (injected)`);
  };
  const err = await t.throwsAsync(pickBackend('webasm', { createRunner }), { instanceOf: BackendUnavailableError });
  t.is(err!.message, 'backend webasm is not available here: no webasm device (injected)');
  const b = await pickBackend('auto', { createRunner });
  t.is(b.name, 'f64');
  t.deepEqual(b.passedOver.map((s) => [s.name, s.reason]), [['gl', 'no gl device (injected)']]);
});

test('auto leaves a working webgpu alone: it runs only when named', async (t) => {
  const createRunner = async (mode: GpujsMode): Promise<KernelRunner> => {
    if (mode !== 'webgpu') throw new Error(`no ${mode} device (injected)`);
    const real = await createGpujsRunner('cpu');
    return { mode, device: 'webgpu: nvidia NVIDIA H200 (injected)', blockSums: (p, c) => real.blockSums(p, c), close: () => real.close() };
  };
  const auto = await pickBackend('auto', { createRunner });
  t.is(auto.name, 'f64');
  const named = await pickBackend('webgpu', { createRunner });
  t.is(named.name, 'webgpu');
  t.is(named.device, 'webgpu: nvidia NVIDIA H200 (injected)');
  await named.close();
});

test('auto passes over a software rasteriser (a CPU posing as a GPU); by name it still runs', async (t) => {
  const createRunner = async (mode: GpujsMode): Promise<KernelRunner> => {
    if (mode === 'webgpu') throw new Error('no webgpu device (injected)');
    const real = await createGpujsRunner('cpu');
    return { mode, device: 'headless-gl: llvmpipe (LLVM 15.0.6, 256 bits)', blockSums: (p, c) => real.blockSums(p, c), close: () => real.close() };
  };
  const b = await pickBackend('auto', { createRunner });
  t.is(b.name, 'f64');
  t.deepEqual(b.passedOver, [
    { name: 'gl', available: true, device: 'headless-gl: llvmpipe (LLVM 15.0.6, 256 bits)', reason: 'a software rasteriser (headless-gl: llvmpipe (LLVM 15.0.6, 256 bits)), slower than f64 on the same CPU' },
  ]);
  const gl = await pickBackend('gl', { createRunner });
  t.is(gl.name, 'gl');
  await gl.close();
});

test('a backend whose compiler drops the compensation fails its self-test', async (t) => {
  // A runner that sums each block naively in float32, as a reassociating compiler would.
  const naive = async (mode: GpujsMode): Promise<KernelRunner> => ({
    mode,
    device: 'naive float32',
    async blockSums(program, c) {
      const B = program.constants.block;
      return Array.from({ length: c.blocks }, (_, j) =>
        Array.from({ length: c.rows }, (_, r) =>
          Float32Array.from({ length: c.Q }, (_, k) => {
            let s = 0;
            for (let i = j * B; i < (j + 1) * B; i++) s = Math.fround(s + Math.fround(c.table[k * c.tableStride + c.nAt[i * c.rows + r]] * c.inv[i * c.Q + k]));
            return s;
          }),
        ),
      );
    },
    close: async () => {},
  });
  const err = await t.throwsAsync(pickBackend('gl', { createRunner: naive }), { instanceOf: BackendUnavailableError });
  t.regex(err!.reason, /gl loses float32 compensation/);
});

test('a backend that fails mid-run falls back to f64 for that shard, says why, and stays off', async (t) => {
  const runner = await faulty('webgpu', (call) => call >= 1);
  const gpu = new GpuPartitionSums(runner, { cpuForwardTerms: 0 });
  const boxes = [denseBox(64, 300), denseBox(64, 300), denseBox(64, 300)];
  const first = await gpu.partitionSums(boxes[0], q, 10);
  t.is(first.backend, 'webgpu');
  t.is(first.fallbackReason, undefined);
  const second = await gpu.partitionSums(boxes[1], q, 10);
  t.is(second.backend, 'f64');
  t.is(second.fallbackKind, 'failed');
  t.is(second.fallbackReason, 'device lost (injected)');
  t.deepEqual(second.sums, partitionSums(boxes[1], q, 10).sums, 'the fallback is the f64 path itself');
  const third = await gpu.partitionSums(boxes[2], q, 10);
  t.is(third.backend, 'f64');
  t.is(third.fallbackKind, 'off');
  t.is(third.fallbackReason, 'webgpu is off after a failure: device lost (injected)');
  t.is(runner.calls, 2, 'a failed device is not tried again');
  t.is(gpu.failedReason, 'device lost (injected)');
  await gpu.close();
});

test('a result that breaks the q = 0 invariant counts as a failure', async (t) => {
  const runner = await faulty('gl', () => false, true);
  const gpu = new GpuPartitionSums(runner, { cpuForwardTerms: 0 });
  const box = denseBox(40, 500);
  const got = await gpu.partitionSums(box, q, 10);
  t.is(got.backend, 'f64');
  t.is(got.fallbackKind, 'failed');
  t.regex(got.fallbackReason!, /at q = 0, expected 40/);
  t.deepEqual(got.sums, partitionSums(box, q, 10).sums);
  await gpu.close();
});

test('small, sparse and out-of-range shards run on f64 by design, with the reason', async (t) => {
  const runner = await faulty('webasm', () => false);
  const gpu = new GpuPartitionSums(runner);
  const small = await gpu.partitionSums(denseBox(20, 100), q, 10);
  t.is(small.backend, 'f64');
  t.is(small.fallbackKind, 'cpu-forward');
  t.regex(small.fallbackReason!, /below the 1048576 worth a kernel call/);
  const none = await gpu.partitionSums(denseBox(20, 5), q, 10);
  t.is(none.fallbackReason, 'no selected node');
  t.is(runner.calls, 0);

  const eager = new GpuPartitionSums(runner, { cpuForwardTerms: 0 });
  // Sparse: each node hits 12 of ~1400 buckets at decimals 1, a dense kernel would do 100× the work.
  const w = Float64Array.from({ length: 60 * 12 }, () => 1 / (1.5 + 138 * rand()));
  const sparse = boxMassFromGroups(w, Uint32Array.from({ length: 61 }, (_, i) => i * 12), { threshold: 150, decimals: 1 });
  const s = await eager.partitionSums(sparse, q, 10);
  t.is(s.fallbackKind, 'cpu-forward');
  t.regex(s.fallbackReason!, /^too sparse: /);
  // q = ±10 at N = 3001: 10 · ln N = 80.1, past what float32 holds with room for a block's sum.
  const wide = Float64Array.of(-10, 0, 10);
  const big = denseBox(40, 3000);
  const far = await eager.partitionSums(big, wide, 10);
  t.is(far.fallbackKind, 'unsupported');
  t.regex(far.fallbackReason!, /out of float32 range/);
  t.deepEqual(far.sums, partitionSums(big, wide, 10).sums);
  t.is(runner.calls, 0);
  await eager.close();
});

test('planShard chunks large shards so every index stays exact in float32', (t) => {
  const box = denseBox(300, 400);
  const layout = shardLayout(box, 10);
  const options = { cpuForwardTerms: 0, maxDenseRatio: 16, block: 32, maxChunkCells: 12000 };
  const plan = planShard(layout, q, options);
  t.true(plan.run);
  if (!plan.run) return;
  t.is(plan.rowsPad % 8, 0);
  t.true(plan.rowsPad >= layout.present.length + 1);
  t.is(plan.perChunk % 32, 0);
  t.true(plan.perChunk >= 32 && plan.perChunk * plan.rowsPad <= 12000);
  const tight = planShard(layout, q, { ...options, maxChunkCells: 1000 });
  t.false(tight.run);
  if (!tight.run) t.is(tight.kind, 'unsupported');
});

test('several chunks per shard give the same sums as one', async (t) => {
  const box = denseBox(200, 600);
  const one = new GpuPartitionSums(await createGpujsRunner('cpu'), { cpuForwardTerms: 0 });
  const many = new GpuPartitionSums(await createGpujsRunner('cpu'), { cpuForwardTerms: 0, maxChunkCells: 32 * 160 });
  const a = await one.partitionSums(box, q, 10);
  const b = await many.partitionSums(box, q, 10);
  t.is(b.backend, 'cpu');
  const ref = partitionSums(box, q, 10);
  for (let x = 0; x < ref.sums.length; x++) t.true(Math.abs(b.sums[x] / ref.sums[x] - 1) <= 5 * 2 ** -24 && Math.abs(a.sums[x] / ref.sums[x] - 1) <= 5 * 2 ** -24);
  await one.close();
  await many.close();
});

// Serial: it swaps process.stderr.write and the environment for the whole process.
test.serial('NEUROMFA_PRINT_KERNELS=1 prints each program once, with its cache key', async (t) => {
  const writes: string[] = [];
  const write = process.stderr.write;
  process.env.NEUROMFA_PRINT_KERNELS = '1';
  process.stderr.write = ((s: string) => (writes.push(String(s)), true)) as typeof process.stderr.write;
  try {
    const gpu = new GpuPartitionSums(await createGpujsRunner('cpu'), { cpuForwardTerms: 0, block: 7 });
    await gpu.partitionSums(denseBox(30, 300), q, 10);
    await gpu.partitionSums(denseBox(30, 300), q, 10);
    await gpu.close();
  } finally {
    process.stderr.write = write;
    delete process.env.NEUROMFA_PRINT_KERNELS;
  }
  const printed = writes.filter((w) => w.includes('[neuromfa gpu] program block-sums/v2/block=7 on cpu'));
  t.is(printed.length, 1);
  t.regex(printed[0], /function blockSums\(nAt, table, inv, rows, tableStride, qCount\)/);
});

test('the block-sums program translates to WGSL without a device', async (t) => {
  // WebGPU cannot run here, but gpu.js translates to WGSL synchronously before it asks for
  // a device, so a construct WGSL cannot express fails here, not first on a GPU node.
  const { WebGPUKernel } = createRequire(import.meta.url)('gpu.js') as { WebGPUKernel: new (s: string, o: object) => { build(...a: unknown[]): Promise<void>; compiledSource: string | null } };
  const program = blockSumsProgram(32);
  const kernel = new WebGPUKernel(program.source, { output: [61, 152, 4], constants: program.constants, dynamicOutput: true, dynamicArguments: true, validate: false });
  let build: Promise<void> | undefined;
  try {
    build = kernel.build(new Float32Array(128 * 152), new Float32Array(61 * 257), new Float32Array(128 * 61), 152, 257, 61);
  } catch (err) {
    t.fail(`WGSL translation threw: ${(err as Error).message}`);
  }
  await build?.catch(() => {}); // no adapter here: the device step rejects, as expected
  t.regex(kernel.compiledSource ?? '', /@compute @workgroup_size/);
  t.regex(kernel.compiledSource ?? '', /user_c=\(\(user_u-user_s\)-user_y\)/, 'the compensation survives translation');
  t.regex(kernel.compiledSource ?? '', /user_u : f32 = abs\(\(user_s\+user_y\)\)/, 'the running sum goes through abs(), which a reassociating compiler cannot fold away');
});

test('the tau bound follows the radius grid', (t) => {
  const grid = Array.from({ length: 149 }, (_, i) => i + 2);
  t.true(tauErrorBound(grid) < 3e-7);
  t.true(tauErrorBound([149, 150]) > 1e-5, 'two close radii amplify any error in ln Z');
  t.is(tauErrorBound([150]), 0);
});

test('devices from acceptErrorHandler take the error handler gpu.js assigns, where Dawn’s setter throws', async (t) => {
  // Dawn's node binding, as seen on an H200: the getter is unimplemented, the setter rejects functions.
  class DawnLikeDevice {
    get onuncapturederror(): unknown {
      throw new Error('UNIMPLEMENTED');
    }
    set onuncapturederror(_: unknown) {
      throw new TypeError('object is not of the correct interface type\ninvalid value to onuncapturederror');
    }
  }
  const adapter = { info: { vendor: 'nvidia' }, requestDevice: async () => new DawnLikeDevice() };
  const gpu = acceptErrorHandler({ requestAdapter: async () => adapter });
  const got = (await gpu.requestAdapter())!;
  t.is(got.info?.vendor, 'nvidia');
  const device = (await got.requestDevice()) as { onuncapturederror: unknown };
  t.true(device instanceof DawnLikeDevice);
  const handler = () => {};
  device.onuncapturederror = handler;
  t.is(device.onuncapturederror, handler);
  t.throws(() => {
    (new DawnLikeDevice() as { onuncapturederror: unknown }).onuncapturederror = handler;
  }, { message: /invalid value to onuncapturederror/ });
  const none = acceptErrorHandler({ requestAdapter: async () => null });
  t.is(await none.requestAdapter(), null);
});
