import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MfaShardResult } from '../proto/shard.js';
import { mergePartials } from '../coordinator/analysis/merge.js';
import { analyzeModel, modelEdgeLists, openModel } from '../coordinator/analysis/model-analysis.js';
import { blockSumsOnGrid, matrixTaskBlocks } from '../coordinator/analysis/per-layer.js';
import { blockShardRanges, rangeBlocks } from '../worker/plan/block-ranges.js';
import { blockNodeRanges } from '../worker/nin/stage-nodes.js';
import { groupBySource } from '../worker/plan/edge-groups.js';
import { groupTasks, matrixTasks } from '../worker/plan/shard-plan.js';
import { runShards } from '../coordinator/run/run-shards.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { edgesFromRows } from '../worker/io/edge-list.js';
import { writeNpyEdges } from '../worker/io/npy.js';
import { runCli } from './helpers/run-cli.js';
import { conformanceDir, firstMismatch } from './helpers/shared.js';
import { makeTmpDir } from './helpers/tmp.js';

const model = join(conformanceDir, 'gptneox', 'neox-f16-trained');
const params = { threshold: 150, decimals: 0, minNeighbors: 10, q: Array.from({ length: 61 }, (_, i) => (i * 10 - 300) / 100) };
const Q = params.q.length;

/** Largest |a - b| relative to max(1, |b|) over two sum tables. */
function worst(a: Float64Array, b: Float64Array): number {
  let w = 0;
  for (let i = 0; i < b.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return w;
}

function addBlocks(sums: Float64Array[]): Float64Array {
  const total = new Float64Array(sums[0].length);
  for (const s of sums) for (let i = 0; i < s.length; i++) total[i] += s[i];
  return total;
}

test('the neox layout has three blocks of 6H + I = 1280 node ids each', async (t) => {
  const { ckpt, layout } = await openModel(model, 32);
  await ckpt.close();
  t.deepEqual(blockNodeRanges(layout), [[0, 1280], [1280, 2560], [2560, 3840]]);
});

test('sampled: per-block sums added over blocks equal the whole-network sums (to 1e-12), and shards never straddle a block', async (t) => {
  const { layout, edges } = await modelEdgeLists(model, [0, 1], 32);
  const backend = new InProcessBackend();
  for (const e of edges) {
    const groups = groupBySource(edgesFromRows(e));
    const ranges = blockShardRanges(groups, 4, layout);
    const blocks = rangeBlocks(groups, ranges, layout);
    const ends = blockNodeRanges(layout);
    for (const [k, [a, b]] of ranges.entries()) {
      const [lo, hi] = ends[blocks[k]];
      t.true(groups.nodes[a] >= lo && groups.nodes[b - 1] < hi, `range ${k} inside block ${blocks[k]}`);
    }
    t.true(ranges.length > 3 && ranges.length <= 4 + 2);
    const results = (await runShards(groupTasks(groups, ranges, 'mfa', params), backend)) as MfaShardResult[];
    const whole = mergePartials(results, Q);
    const perBlock = blockSumsOnGrid(results, blocks, 3, Q);
    t.deepEqual(Array.from(perBlock.present), Array.from(whole.present));
    t.true(worst(addBlocks(perBlock.sums), whole.sums) <= 1e-12, `worst ${worst(addBlocks(perBlock.sums), whole.sums)}`);
    // Each block contributes: none of the three is empty.
    t.true(perBlock.sums.every((s) => s.some((v) => v > 0)));
  }
});

test('full NIN: per-block sums added over blocks equal the whole-network sums (to 1e-12)', async (t) => {
  const { ckpt, layout } = await openModel(model, 32);
  try {
    const tasks = matrixTasks(layout.matrices, ckpt, params, 40_000);
    const blocks = matrixTaskBlocks(tasks, layout);
    t.deepEqual([...new Set(blocks)], [0, 1, 2]);
    const results = (await runShards(tasks, new InProcessBackend())) as MfaShardResult[];
    const perBlock = blockSumsOnGrid(results, blocks, 3, Q);
    t.true(worst(addBlocks(perBlock.sums), mergePartials(results, Q).sums) <= 1e-12);
  } finally {
    await ckpt.close();
  }
});

test("per-block tau equals mfa of that block's edges alone", async (t) => {
  const report = await analyzeModel(model, { samples: [0], layerSample: 32, params, shardsPerSample: 3, shardBytes: 1 << 20, perLayer: true }, new InProcessBackend());
  const blocks = report.samples[0].blocks!;
  t.deepEqual(blocks.map((b) => b.block), [0, 1, 2]);
  const { layout, edges } = await modelEdgeLists(model, [0], 32);
  const ends = blockNodeRanges(layout);
  const { dir, cleanup } = await makeTmpDir();
  try {
    for (const [b, [lo, hi]] of ends.entries()) {
      const rows: number[] = [];
      for (let e = 0; e < edges[0].length; e += 3) if (edges[0][e] >= lo && edges[0][e] < hi) rows.push(edges[0][e], edges[0][e + 1], edges[0][e + 2]);
      const file = join(dir, `block${b}.npy`);
      await writeNpyEdges(file, Float64Array.from(rows));
      const r = await runCli(['mfa', file, '--json', '--threads', '1']);
      t.is(r.code, 0, r.stderr);
      const alone = JSON.parse(r.stdout);
      const mine = blocks[b];
      if ('error' in mine) return t.fail(mine.error);
      t.is(firstMismatch(mine.tau, alone.tau, 1e-12), -1, `tau of block ${b}`);
      t.deepEqual([mine.nodesSelected, mine.radii], [alone.nodesSelected, alone.radii]);
      t.true(Math.abs(mine.alpha0 - alone.alpha0) <= 1e-12 && Math.abs(mine.width - alone.width) <= 1e-12);
    }
  } finally {
    await cleanup();
  }
  // The whole network is unchanged by cutting at blocks (to 1e-12 of the usual layout).
  const plain = await analyzeModel(model, { samples: [0], layerSample: 32, params, shardsPerSample: 3, shardBytes: 1 << 20 }, new InProcessBackend());
  t.is(plain.samples[0].blocks, undefined);
  t.is(firstMismatch(report.samples[0].tau, plain.samples[0].tau, 1e-12), -1);
});

test('analyze --per-layer --out: per-layer.csv rows equal the JSON block spectra, and the figures draw every block', async (t) => {
  const { dir, cleanup } = await makeTmpDir();
  try {
    const out = join(dir, 'run');
    const r = await runCli(['analyze', model, '--samples', '0,1', '--per-layer', '--out', out, '--threads', '2']);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /per block \(mean over samples, population std\):\nblock +alpha0 +std +width +std +samples\n +0 /);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    const csv = (await readFile(join(out, 'per-layer.csv'), 'utf8')).trim().split('\n');
    t.is(csv[0], 'sample,block,alpha0,width,nodes_selected,radii,error');
    t.is(csv.length, 1 + 2 * 3);
    const b = report.samples[1].blocks[2];
    t.is(csv[6], `1,2,${b.alpha0},${b.width},${b.nodesSelected},${b.radii.length},`);
    const profile = JSON.parse(await readFile(join(out, 'per-layer.vl.json'), 'utf8'));
    t.deepEqual(profile.datasets.means.map((m: { block: number }) => m.block), [0, 1, 2]);
    t.is(profile.datasets.samples.length, 6);
    const tau = JSON.parse(await readFile(join(out, 'per-layer-tau.vl.json'), 'utf8'));
    t.is(tau.data.values.length, 3 * 61);
    t.true((await readFile(join(out, 'report.html'), 'utf8')).includes('Per-layer spectra'));
  } finally {
    await cleanup();
  }
});

test('emergence --per-layer: E per block from the block spectra, per-layer.csv and the heatmap', async (t) => {
  const series = join(conformanceDir, 'series', 'tiny-neox-f16');
  const { dir, cleanup } = await makeTmpDir();
  try {
    const out = join(dir, 'run');
    const steps = ['step0', 'step8', 'step64', 'step512'];
    const r = await runCli(['emergence', ...steps.map((s) => join(series, s)), '--samples', '0-1', '--per-layer', '--out', out, '--threads', '2']);
    t.is(r.code, 0, r.stderr);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    const p = report.perLayer;
    t.is(p.blocks, 2);
    t.deepEqual(p.points.map((x: { label: string; block: number }) => `${x.label}/${x.block}`), steps.flatMap((s) => [`${s}/0`, `${s}/1`]));
    // E_b(t) = (w_b(t)/w_b(t0)) ln(alpha0_b(t0)/alpha0_b(t)), from the block means.
    for (const x of p.points) {
      const t0 = p.points[x.block];
      t.true(Math.abs(x.E - (x.width.mean / t0.width.mean) * Math.log(t0.alpha0.mean / x.alpha0.mean)) <= 1e-15);
      t.is(x.samples, 2);
    }
    t.deepEqual([p.points[0].E, p.points[1].E], [0, 0]);
    const csv = (await readFile(join(out, 'per-layer.csv'), 'utf8')).trim().split('\n');
    t.is(csv[0], 'checkpoint,step,block,E,alpha0_mean,alpha0_std,width_mean,width_std,samples');
    const last = p.points[7];
    t.is(csv[8], `step512,512,1,${last.E},${last.alpha0.mean},${last.alpha0.std},${last.width.mean},${last.width.std},2`);
    const heat = JSON.parse(await readFile(join(out, 'per-layer-heatmap.vl.json'), 'utf8'));
    t.deepEqual(heat.vconcat.map((v: { encoding: { color: { field: string } } }) => v.encoding.color.field), ['E', 'alpha0']);
    const cells = heat.vconcat[0].data.values;
    t.is(cells.length, 8);
    t.deepEqual(cells.map((c: { order: number }) => c.order), [0, 0, 1, 1, 2, 2, 3, 3]);
    t.deepEqual([heat.vconcat[0].mark.type, heat.vconcat[0].encoding.x.field, heat.vconcat[0].encoding.y.field], ['rect', 'label', 'block']);
  } finally {
    await cleanup();
  }
});
