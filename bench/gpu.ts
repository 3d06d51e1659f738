import { cpus, loadavg, totalmem } from 'node:os';
import { mergePartials } from '../coordinator/analysis/merge.js';
import { spectrumFromSums } from '../coordinator/analysis/spectrum.js';
import type { MatrixPart, MfaParams, MfaShardResult } from '../proto/shard.js';
import { GpuPartitionSums, probeBackends } from '../worker/gpu/index.js';
import { createGpujsRunner, type GpujsMode } from '../worker/gpu/gpujs-runner.js';
import { denseChunk, float32Powers, rowIndexer, shardLayout } from '../worker/gpu/dense-layout.js';
import { acquireNavigatorGpu, releaseNavigatorGpu } from '../worker/gpu/webgpu-node.js';
import { boxMassFromCodeHistogram, type BoxMass } from '../worker/kernel/box-mass.js';
import { partitionSums, type PartitionPartial } from '../worker/kernel/partition-sums.js';
import { matrixBlocks, matrixHistogram } from '../worker/matrix-histogram.js';
import { f16BitsToNumber } from '../worker/io/dtype.js';
import { float64ToF16Bits } from '../worker/io/safetensors-writer.js';
import type { BenchSection } from './cli-runs.js';
import { lcg } from '../worker/kernel/lcg.js';

const q = Array.from({ length: 61 }, (_, k) => Math.round(-300 + 10 * k) / 100);
const params: MfaParams = { threshold: 150, decimals: 0, minNeighbors: 10, q };
const qs = Float64Array.from(q);
const U = 2 ** -24;


/** A Linear weight [out, in] in float16, half-way to trained: Laplace with per-row scales around 0.02. */
function f16Matrix(out: number, inputs: number, rand: () => number): Uint8Array {
  const bits = new Uint16Array(out * inputs);
  for (let r = 0; r < out; r++) {
    const s = 0.02 * Math.exp(0.5 * (rand() - 0.5));
    for (let c = 0; c < inputs; c++) {
      const u = rand() - 0.5;
      bits[r * inputs + c] = float64ToF16Bits(-Math.sign(u) * Math.log(1 - 2 * Math.abs(u)) * s);
    }
  }
  return new Uint8Array(bits.buffer);
}

async function best<T>(times: number, f: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  let top: { ms: number; value: T } | undefined;
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    const value = await f();
    const ms = performance.now() - t0;
    if (!top || ms < top.ms) top = { ms, value };
  }
  return top!;
}

const asResult = (p: PartitionPartial): MfaShardResult => ({ id: 0, measure: 'mfa', backend: 'f64', selected: p.selected, present: p.present, sums: p.sums, nodes: 0, edges: 0, skippedNonFinite: 0, bytesRead: 0, seconds: 0 });
const tauOf = (p: PartitionPartial) => spectrumFromSums(mergePartials([asResult(p)], q.length), params).tau;
const M = (x: number) => `${(x / 1e6).toFixed(0)}M`;

/**
 * The GPU section of `npm run bench`: partition-sum throughput per backend against f64 on the
 * shards a pythia-1b full NIN produces (hidden 2048: dense_h_to_4h is 2048 nodes × 8192
 * out-edges, dense_4h_to_h 8192 × 2048), and what bucketing costs beside it. `say` gets the
 * result lines as they are measured, ready for bench/RESULTS.md; `log` what is being done.
 */
export const benchGpu: BenchSection = async (say, log) => {
  const rand = lcg(1234);
  say(`gpu bench: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, load ${loadavg()[0].toFixed(1)}`);
  log('gpu bench: probing backends');
  const statuses = await probeBackends();
  say(`backends: ${statuses.map((s) => (s.available ? `${s.name} (${s.device})` : `${s.name} unavailable: ${s.reason}`)).join('; ')}`);
  const gpuModes = statuses.filter((s) => s.available && s.name !== 'f64').map((s) => s.name as GpujsMode);

  for (const [label, out, inputs] of [
    ['dense_h_to_4h', 8192, 2048],
    ['dense_4h_to_h', 2048, 8192],
  ] as const) {
    log(`gpu bench: ${label}: generating ${out} × ${inputs} F16 weights`);
    const raw = f16Matrix(out, inputs, rand);
    const part: MatrixPart = { tensor: label, file: 'memory', dataStart: 0, dtype: 'F16', rows: out, transposed: false };
    const inline = matrixBlocks([part], inputs, 0, inputs).map((b) => raw.subarray(b.start, b.start + b.sliceBytes));
    const edges = out * inputs;

    // Bucketing: the full-NIN path, weights → code histogram → box masses.
    const bucketing = await best(3, async () => {
      const { hist } = await matrixHistogram([part], inputs, 0, inputs, params, { inline });
      return boxMassFromCodeHistogram(hist, inputs, params);
    });
    const box: BoxMass = bucketing.value;
    const ref = partitionSums(box, qs, params.minNeighbors);
    const P = ref.present.length;
    const terms = ref.selected * P * q.length;
    const hits = box.buckets.length;
    say(`pythia-1b ${label} shard (${inputs} nodes × ${out} F16 out-edges): selected ${ref.selected}, ${P} radii, ${q.length} q → ${M(terms)} node·bucket·q terms (f64 does ${M(hits * q.length)} hit·q)`);

    const f64 = await best(3, () => partitionSums(box, qs, params.minNeighbors));
    say(`  f64: ${f64.ms.toFixed(1)} ms, ${M((terms / f64.ms) * 1e3)} terms/s (1.00×)`);
    for (const mode of gpuModes) {
      const gpu = new GpuPartitionSums(await createGpujsRunner(mode), { cpuForwardTerms: 0 });
      try {
        const r = await best(mode === 'cpu' ? 1 : 3, () => gpu.partitionSums(box, qs, params.minNeighbors));
        if (r.value.backend !== mode) {
          say(`  ${mode}: ran on ${r.value.backend} (${r.value.fallbackReason})`);
          continue;
        }
        let rel = 0;
        for (let x = 0; x < ref.sums.length; x++) rel = Math.max(rel, Math.abs(r.value.sums[x] / ref.sums[x] - 1));
        const a = tauOf(ref);
        const b = tauOf(r.value);
        const dtau = Math.max(...a.map((v, k) => Math.abs(v - b[k])));
        say(`  ${mode}: ${r.ms.toFixed(1)} ms, ${M((terms / r.ms) * 1e3)} terms/s (${(f64.ms / r.ms).toFixed(2)}× f64), max rel ΔS ${(rel / U).toFixed(2)}u, max |Δtau| ${dtau.toExponential(1)}`);
      } finally {
        await gpu.close();
      }
    }
    // What the float32 path costs on the host before any kernel runs: layout, tables, dense n.
    const host = await best(3, () => {
      const layout = shardLayout(box, params.minNeighbors);
      const powers = float32Powers(qs, layout.maxN);
      const rowsPad = Math.ceil((layout.present.length + 1) / 8) * 8;
      return denseChunk(box, layout, rowIndexer(layout.present), powers, q.length, 0, layout.selected, 32, rowsPad);
    });
    say(`  float32 path host floor (layout + dense n + N^-q, tables cached): ${host.ms.toFixed(1)} ms (${((100 * host.ms) / f64.ms).toFixed(0)}% of f64's whole stage)`);

    // Bucketing beside it, and what moving it onto gpu.js would start from.
    const stage = await best(3, () => {
      const bits = new Uint16Array(raw.buffer, raw.byteOffset, edges);
      const staged = new Float32Array(edges);
      for (let e = 0; e < edges; e++) staged[e] = bits[e]; // gpu.js takes float arrays only
      return staged;
    });
    say(
      `  bucketing (F16 weights → box masses): ${bucketing.ms.toFixed(1)} ms, ${M((edges / bucketing.ms) * 1e3)} edges/s = ${((100 * bucketing.ms) / (bucketing.ms + f64.ms)).toFixed(0)}% of this shard's CPU time; ` +
        `staging the 16-bit words as float32 for gpu.js alone: ${stage.ms.toFixed(1)} ms (${((100 * stage.ms) / bucketing.ms).toFixed(0)}% of CPU bucketing)`,
    );
    for (const mode of gpuModes.filter((m) => m !== 'cpu')) {
      // On the CPU-bound webasm a slice says enough; a GPU gets the whole shard.
      const sub = mode === 'webasm' ? 32 : inputs;
      const ms = await gatherHistogramMs(mode, raw, out, inputs, sub);
      const rate = ((sub * out) / ms) * 1e3;
      say(`  gather-histogram kernel on ${mode} (gpu.js has no atomics: one thread per node × bucket scans the node's edges), ${sub} nodes: ${M(rate)} edges/s, ${(((edges / rate) * 1e3) / bucketing.ms).toFixed(2)}× the CPU bucketing time (upload included, staging not)`);
    }
  }
};

/** Times a gpu.js histogram written the only way gpu.js allows (a gather per bucket) on `sub` nodes. */
async function gatherHistogramMs(mode: GpujsMode, raw: Uint8Array, out: number, inputs: number, sub: number): Promise<number> {
  const { GPU, WebGPUContext } = ((await import('gpu.js')) as unknown as { default: { GPU: new (o: object) => any; WebGPUContext: { destroy(): Promise<void> } } }).default;
  if (mode === 'webgpu') await acquireNavigatorGpu();
  const gpu = new GPU({ mode: mode === 'gl' ? 'headlessgl' : mode });
  const bits = new Uint16Array(raw.buffer, raw.byteOffset, out * inputs);
  // Node c's out-edges, contiguous per node, as float32 weights (decoded on the host).
  const w = new Float32Array(sub * out);
  for (let c = 0; c < sub; c++) for (let r = 0; r < out; r++) w[c * out + r] = f16BitsToNumber(bits[r * inputs + c]);
  const kernel = gpu.createKernel(
    `function (w, degree, lo, threshold) {
      let n = 0;
      for (let e = 0; e < degree; e++) {
        const d = 1 / Math.abs(w[this.thread.y * degree + e]);
        if (d > 1 && d <= threshold && Math.round(d) === lo + this.thread.x) n++;
      }
      return n;
    }`,
    { output: [150, sub], loopMaxIterations: out + 1, precision: 'single' },
  );
  await kernel(w, out, 1, 150); // compile outside the timing
  const t = await best(2, () => kernel(w, out, 1, 150));
  await gpu.destroy();
  // gpu.js keeps its one WebGPU device until told: a live device keeps Dawn, and the process, running.
  if (mode === 'webgpu') await releaseNavigatorGpu(() => WebGPUContext.destroy());
  return t.ms;
}
