import test from 'ava';
import { join } from 'node:path';
import { mfaOfGroups, nfdOfGroups } from '../coordinator/analysis/edge-analysis.js';
import { analyzeModel } from '../coordinator/analysis/model-analysis.js';
import { groupBySource } from '../worker/plan/edge-groups.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { PiscinaBackend } from '../worker/backends/piscina.js';
import { readNpyEdges } from '../worker/io/npy.js';
import { edgesFromColumns, type EdgeList } from '../worker/io/edge-list.js';
import { conformanceDir, firstMismatch, readJson } from './helpers/shared.js';

const caseDir = join(conformanceDir, 'cases', 'heterogeneous');
const expected = readJson(join(caseDir, 'expected.json'));
const params = expected.params;
const inProcess = new InProcessBackend();

function shuffled(e: EdgeList, seed: number): EdgeList {
  const n = e.count;
  const order = Array.from({ length: n }, (_, i) => i);
  let s = seed;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const pick = (a: Float64Array) => Float64Array.from(order, (i) => a[i * e.stride]);
  return edgesFromColumns(pick(e.src), pick(e.dst), pick(e.w));
}

test('1 shard and many shards give the same tau to 1e-12', async (t) => {
  const groups = groupBySource(await readNpyEdges(join(caseDir, 'edges.npy')));
  const one = await mfaOfGroups(groups, params, inProcess, 1);
  for (const shards of [2, 7, 64, groups.nodes.length]) {
    const many = await mfaOfGroups(groups, params, inProcess, shards);
    t.is(many.stats.shards, Math.min(shards, groups.nodes.length));
    t.is(firstMismatch(many.spectrum.tau, one.spectrum.tau, 1e-12), -1, `${shards} shards`);
    t.deepEqual(many.spectrum.radii, one.spectrum.radii);
    t.is(many.spectrum.nodesSelected, one.spectrum.nodesSelected);
  }
});

test('shuffling the rows of an edge list changes nothing', async (t) => {
  const edges = await readNpyEdges(join(caseDir, 'edges.npy'));
  const a = await mfaOfGroups(groupBySource(edges), params, inProcess, 5);
  const b = await mfaOfGroups(groupBySource(shuffled(edges, 42)), params, inProcess, 5);
  // Same nodes, same shard layout: the per-node work sorts its radii, so results are identical.
  t.deepEqual(b.spectrum, a.spectrum);
  const na = await nfdOfGroups(groupBySource(edges), { threshold: 200, decimals: 0 }, inProcess, 3);
  const nb = await nfdOfGroups(groupBySource(shuffled(edges, 7)), { threshold: 200, decimals: 0 }, inProcess, 3);
  t.deepEqual(nb.values, na.values);
});

test('the thread pool gives bit-identical results to the in-process kernel', async (t) => {
  const pool = new PiscinaBackend(2);
  try {
    const groups = groupBySource(await readNpyEdges(join(caseDir, 'edges.npy')));
    const a = await mfaOfGroups(groups, params, inProcess, 6);
    const b = await mfaOfGroups(groups, params, pool, 6);
    t.deepEqual(b.spectrum, a.spectrum);
    const model = join(conformanceDir, 'gptneox', 'neox-f16-trained');
    const opts = { samples: 'full' as const, layerSample: 32, params, shardsPerSample: 1, shardBytes: 64 << 10 };
    const fa = await analyzeModel(model, opts, inProcess);
    const fb = await analyzeModel(model, opts, pool);
    t.deepEqual(fb.samples, fa.samples);
    t.true(fa.stats.shards > 4);
  } finally {
    await pool.close();
  }
});

test('a comma-list q grid equals the evenly spaced grid it spells out', async (t) => {
  const groups = groupBySource(await readNpyEdges(join(caseDir, 'edges.npy')));
  const even = await mfaOfGroups(groups, params, inProcess, 3);
  // Perturb one point by 1e-9 so the grid is no longer even and the tabled path runs.
  const q = params.q.slice();
  const listed = await mfaOfGroups(groups, { ...params, q }, inProcess, 3);
  t.deepEqual(listed.spectrum.tau, even.spectrum.tau);
  q[5] += 1e-9;
  const uneven = await mfaOfGroups(groups, { ...params, q }, inProcess, 3);
  const at = uneven.spectrum.tau.map((v, k) => (k === 5 ? even.spectrum.tau[k] : v));
  t.is(firstMismatch(at, even.spectrum.tau, 1e-12), -1);
  t.is(firstMismatch(uneven.spectrum.tau, expected.tau), -1, 'tabled path still meets the reference within 1e-9');
});

test('a matrix shard computed from shipped bytes equals the one read from disk, column slices included', async (t) => {
  const { openModel } = await import('../coordinator/analysis/model-analysis.js');
  const { matrixTasks } = await import('../worker/plan/shard-plan.js');
  const { withInlineBytes } = await import('../coordinator/plan/ship-bytes.js');
  const { ckpt, layout } = await openModel(join(conformanceDir, 'gptneox', 'neox-bf16-trained'), 32);
  try {
    // 4 KB shards cut every matrix into column ranges: strided reads of row slices.
    const tasks = matrixTasks(layout.matrices, ckpt, params, 4096);
    t.true(tasks.length > layout.matrices.length);
    for (const task of tasks.slice(0, 12)) {
      const fromDisk = await inProcess.run(task);
      const shipped = await withInlineBytes(task);
      t.true(shipped.input.kind === 'matrix' && shipped.input.inline!.length > 0);
      const fromBytes = await inProcess.run(shipped);
      t.deepEqual({ ...fromBytes, seconds: 0 }, { ...fromDisk, seconds: 0 });
    }
  } finally {
    await ckpt.close();
  }
});
