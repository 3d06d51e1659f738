import test from 'ava';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { mergePartials } from '../coordinator/analysis/merge.js';
import { spectrumFromSums } from '../coordinator/analysis/spectrum.js';
import { groupBySource } from '../worker/plan/edge-groups.js';
import type { MfaParams, MfaShardResult } from '../proto/shard.js';
import { readNpyEdges } from '../worker/io/npy.js';
import { boxMassFromGroups, type BoxMass } from '../worker/kernel/box-mass.js';
import { partitionSums, type PartitionPartial } from '../worker/kernel/partition-sums.js';
import { GpuPartitionSums, SUMS_RELATIVE_BOUND, UNIT_ROUNDOFF_F32, probeBackend, tauErrorBound, type BackendName } from '../worker/gpu/index.js';
import { createGpujsRunner, type GpujsMode } from '../worker/gpu/gpujs-runner.js';
import { conformanceDir, readJson } from './helpers/shared.js';
import { lcg } from '../worker/kernel/lcg.js';

/**
 * The float32 kernel against the float64 path, written once and run on every gpu.js backend
 * that works on this machine (tfjs describeWithFlags). Exact where the contract is exact
 * (selected, present, layout), within the stated bound where it is float32 (the sums and tau).
 * Every shard is forced through the kernel: no CPU forwarding, no sparsity gate.
 */
const TAU_TARGET = 1e-6;
const modes: GpujsMode[] = ['webasm', 'cpu', 'webgpu', 'gl'];
const statuses = await Promise.all(modes.map((m) => probeBackend(m)));
const casesDir = join(conformanceDir, 'cases');
const cases = readdirSync(casesDir).sort();

const rand = lcg(2024);
const gauss = () => Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
const defaultQ = Float64Array.from({ length: 61 }, (_, k) => (k - 30) / 10);

async function forced(mode: GpujsMode): Promise<GpuPartitionSums> {
  return new GpuPartitionSums(await createGpujsRunner(mode), { cpuForwardTerms: 0, maxDenseRatio: Infinity });
}

/** Node-contiguous shards of a grouped edge list, as the shard planner cuts them. */
function shards(weights: Float64Array, offsets: Uint32Array, stride: number, p: MfaParams, count: number): BoxMass[] {
  const nodes = offsets.length - 1;
  const out: BoxMass[] = [];
  for (let s = 0; s < count; s++) {
    const a = Math.floor((s * nodes) / count);
    const b = Math.floor(((s + 1) * nodes) / count);
    out.push(boxMassFromGroups(weights, offsets.subarray(a, b + 1), p, stride));
  }
  return out;
}

function asResult(p: PartitionPartial, id: number): MfaShardResult {
  return { id, measure: 'mfa', backend: 'f64', selected: p.selected, present: p.present, sums: p.sums, nodes: 0, edges: 0, skippedNonFinite: 0, bytesRead: 0, seconds: 0 };
}

function maxRelative(a: Float64Array, b: Float64Array): number {
  let m = 0;
  for (let x = 0; x < a.length; x++) m = Math.max(m, Math.abs(a[x] / b[x] - 1));
  return m;
}

/** Runs both paths on every shard; checks the layout exactly and the sums within the bound. */
async function compareShards(t: any, gpu: GpuPartitionSums, mode: BackendName, boxes: BoxMass[], q: Float64Array, m: number) {
  const f64: PartitionPartial[] = [];
  const f32: PartitionPartial[] = [];
  let worst = 0;
  for (const box of boxes) {
    const ref = partitionSums(box, q, m);
    const got = await gpu.partitionSums(box, q, m);
    t.is(got.selected, ref.selected);
    t.deepEqual(got.present, ref.present);
    t.is(got.sums.length, ref.sums.length);
    if (ref.selected > 0) {
      t.is(got.backend, mode, `shard ran on ${got.backend}: ${got.fallbackReason}`);
      worst = Math.max(worst, maxRelative(got.sums, ref.sums));
    } else {
      t.deepEqual(got.sums, ref.sums);
    }
    f64.push(ref);
    f32.push(got);
  }
  t.true(worst <= SUMS_RELATIVE_BOUND, `max relative error of S ${worst.toExponential(2)} above ${SUMS_RELATIVE_BOUND.toExponential(2)}`);
  return { f64, f32, worst };
}

function tauDelta(f64: PartitionPartial[], f32: PartitionPartial[], p: MfaParams) {
  const Q = p.q.length;
  const a = spectrumFromSums(mergePartials(f64.map(asResult), Q), p);
  const b = spectrumFromSums(mergePartials(f32.map(asResult), Q), p);
  let d = 0;
  for (let k = 0; k < Q; k++) d = Math.max(d, Math.abs(a.tau[k] - b.tau[k]));
  return { delta: d, bound: tauErrorBound(a.radii), f64: a, f32: b };
}

/** A random box mass: nodes with random degrees over a random bucket span, as boxMassFromGroups makes. */
function randomBox(nodes: number, maxDegree: number, scale: number): { weights: Float64Array; offsets: Uint32Array } {
  const offsets = new Uint32Array(nodes + 1);
  for (let i = 0; i < nodes; i++) offsets[i + 1] = offsets[i] + Math.floor(rand() * maxDegree);
  const weights = new Float64Array(offsets[nodes]);
  for (let e = 0; e < weights.length; e++) weights[e] = scale * gauss() * Math.exp(rand() - 0.5);
  return { weights, offsets };
}

for (const status of statuses) {
  const mode = status.name as GpujsMode;
  if (!status.available) {
    test(`${mode}: skipped, unavailable here: ${status.reason}`, (t) => t.pass());
    continue;
  }

  for (const name of cases) {
    test(`${mode}: tau within the bound of f64 on conformance case ${name}`, async (t) => {
      const expected = readJson(join(casesDir, name, 'expected.json'));
      const p: MfaParams = expected.params;
      const groups = groupBySource(await readNpyEdges(join(casesDir, name, 'edges.npy')));
      const gpu = await forced(mode);
      try {
        const { f64, f32, worst } = await compareShards(t, gpu, mode, shards(groups.weights, groups.offsets, groups.stride, p, 3), Float64Array.from(p.q), p.minNeighbors);
        const { delta, bound, f64: s } = tauDelta(f64, f32, p);
        t.is(s.nodesSelected, expected.nodesSelected);
        t.log(`max |Δtau| ${delta.toExponential(2)} (bound ${bound.toExponential(2)}), max rel ΔS ${(worst / UNIT_ROUNDOFF_F32).toFixed(2)}u`);
        t.true(delta <= bound, `|Δtau| ${delta} above the bound ${bound}`);
        t.true(delta <= TAU_TARGET);
      } finally {
        await gpu.close();
      }
    });
  }

  test(`${mode}: random node counts, degrees, decimals and q grids`, async (t) => {
    const gpu = await forced(mode);
    try {
      let worst = 0;
      for (let c = 0; c < 10; c++) {
        const nodes = 1 + Math.floor(rand() * 300);
        const { weights, offsets } = randomBox(nodes, 1 + Math.floor(rand() * 600), 0.005 + rand() * 0.05);
        const p = { threshold: 20 + rand() * 180, decimals: rand() < 0.7 ? 0 : 1 };
        // Uneven grids too: the f64 path then takes its table branch instead of the recurrence.
        const q = c % 3 === 2 ? Float64Array.of(-2.5, -1, -0.3, 0, 0.25, 1, 1.7, 3) : Float64Array.from({ length: 1 + Math.floor(rand() * 40) }, (_, k) => -2 + k * 0.1);
        const m = Math.floor(rand() * 20);
        const r = await compareShards(t, gpu, mode, shards(weights, offsets, 1, { ...p, minNeighbors: m, q: [] }, 1 + Math.floor(rand() * 3)), q, m);
        worst = Math.max(worst, r.worst);
      }
      t.log(`max rel ΔS ${(worst / UNIT_ROUNDOFF_F32).toFixed(2)}u over 10 random inputs`);
    } finally {
      await gpu.close();
    }
  });

  test(`${mode}: edge cases: one node, one bucket, counts of 1, q = 0`, async (t) => {
    const gpu = await forced(mode);
    const p = { threshold: 150, decimals: 0 };
    try {
      // One node with 40 distances spread over buckets.
      const one = Float64Array.from({ length: 40 }, (_, e) => 1 / (2 + e * 3.3));
      await compareShards(t, gpu, mode, [boxMassFromGroups(one, Uint32Array.of(0, 40), p)], defaultQ, 10);
      // One bucket: every distance rounds to 7, so there is one present bucket (two rows).
      const flat = new Float64Array(5 * 30).fill(1 / 7.2);
      const boxFlat = boxMassFromGroups(flat, Uint32Array.from({ length: 6 }, (_, i) => i * 30), p);
      const r1 = await compareShards(t, gpu, mode, [boxFlat], defaultQ, 10);
      t.deepEqual(Array.from(r1.f32[0].present), [7]);
      // Counts of 1: every distance in its own bucket, so each step adds exactly one.
      const ones = Float64Array.from({ length: 3 * 100 }, (_, e) => 1 / (2 + (e % 100) + (e >= 100 ? 0.2 : 0)));
      const boxOnes = boxMassFromGroups(ones, Uint32Array.of(0, 100, 200, 300), p);
      t.true(Array.from(boxOnes.cum.subarray(0, 100)).every((c, k) => c === k + 1));
      await compareShards(t, gpu, mode, [boxOnes], defaultQ, 10);
      // q = 0 alone, and inside the grid: every term is 1, so S is the selected count exactly.
      for (const q of [Float64Array.of(0), defaultQ]) {
        const got = await gpu.partitionSums(boxOnes, q, 10);
        const k0 = q.indexOf(0);
        for (let r = 0; r <= got.present.length; r++) t.is(got.sums[r * q.length + k0], 3);
      }
    } finally {
      await gpu.close();
    }
  });

  test(`${mode}: pythia-12b degrees: N = 20481 neighbours at q = ±3`, async (t) => {
    // dense_4h_to_h of pythia-12b: an input neuron has 20480 out-edges; at threshold 150
    // nearly all are kept, so N_i reaches 20481 and (1/N)^-3 = 8.6e12.
    const nodes = 40;
    const degree = 20480;
    const weights = new Float64Array(nodes * degree);
    for (let e = 0; e < weights.length; e++) weights[e] = (1 / (1.2 + 148 * rand())) * (rand() < 0.5 ? -1 : 1);
    weights[5] = 0.0001; // one distance beyond the threshold on node 0, so N differs across nodes
    const offsets = Uint32Array.from({ length: nodes + 1 }, (_, i) => i * degree);
    const box = boxMassFromGroups(weights, offsets, { threshold: 150, decimals: 0 });
    t.is(Math.max(...box.kept) + 1, 20481);
    const gpu = await forced(mode);
    try {
      const { f64, f32, worst } = await compareShards(t, gpu, mode, [box], defaultQ, 10);
      const { delta, bound } = tauDelta(f64, f32, { threshold: 150, decimals: 0, minNeighbors: 10, q: Array.from(defaultQ) });
      t.log(`max |Δtau| ${delta.toExponential(2)} (bound ${bound.toExponential(2)}), max rel ΔS ${(worst / UNIT_ROUNDOFF_F32).toFixed(2)}u`);
      t.true(delta <= Math.min(bound, TAU_TARGET));
    } finally {
      await gpu.close();
    }
  });

  test(`${mode}: full-NIN shards of a pythia-160m-shaped layer (768 × 3072, Gaussian and heavy-tailed)`, async (t) => {
    const gpu = await forced(mode);
    try {
      // h_to_4h: 768 input nodes × 3072 out-edges; 4h_to_h: 3072 × 768. Init N(0, 0.02), and a
      // trained-like Laplace with per-node scales.
      for (const [nodes, degree, kind] of [[768, 3072, 'gauss'], [3072, 768, 'laplace']] as const) {
        const weights = new Float64Array(nodes * degree);
        for (let i = 0; i < nodes; i++) {
          const s = kind === 'gauss' ? 0.02 : 0.015 * Math.exp(rand() - 0.5);
          for (let e = 0; e < degree; e++) {
            const u = rand() - 0.5;
            weights[i * degree + e] = kind === 'gauss' ? s * gauss() : -Math.sign(u) * Math.log(1 - 2 * Math.abs(u)) * s;
          }
        }
        const offsets = Uint32Array.from({ length: nodes + 1 }, (_, i) => i * degree);
        const p: MfaParams = { threshold: 150, decimals: 0, minNeighbors: 10, q: Array.from(defaultQ) };
        const { f64, f32, worst } = await compareShards(t, gpu, mode, shards(weights, offsets, 1, p, 4), defaultQ, 10);
        const { delta, bound } = tauDelta(f64, f32, p);
        t.log(`${nodes}×${degree} ${kind}: max |Δtau| ${delta.toExponential(2)} (bound ${bound.toExponential(2)}), max rel ΔS ${(worst / UNIT_ROUNDOFF_F32).toFixed(2)}u`);
        t.true(delta <= Math.min(bound, TAU_TARGET));
      }
    } finally {
      await gpu.close();
    }
  });
}
