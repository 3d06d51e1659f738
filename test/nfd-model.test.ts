import test from 'ava';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openCheckpoint } from '../worker/io/checkpoint.js';
import { decodeFloats, type DType } from '../worker/io/dtype.js';
import { writeNpyEdges } from '../worker/io/npy.js';
import { runCli } from './helpers/run-cli.js';
import { conformanceDir } from './helpers/shared.js';
import { makeTmpDir } from './helpers/tmp.js';

const model = join(conformanceDir, 'gptneox', 'neox-f16-trained');
// config.json: hidden 128, 3 blocks, intermediate 512.
const H = 128;
const I = 512;
const BLOCKS = 3;

/**
 * Where node n lives, written out for GPT-NeoX (SPEC §2): per block the inputs of attn_in (H),
 * the qkv pass-through (3H), attn_out (H), mlp_in (H) and mlp_out (I), in that order.
 */
function expectedName(n: number): { block: number; matrix: string; neuron: number } {
  const per = 6 * H + I;
  const block = Math.floor(n / per);
  let r = n % per;
  for (const [matrix, size] of [['attn_in', H], ['attn_pass', 3 * H], ['attn_out', H], ['mlp_in', H], ['mlp_out', I]] as const) {
    if (r < size) return { block, matrix, neuron: r };
    r -= size;
  }
  throw new Error('unreachable');
}

/** The full NIN of the checkpoint as an explicit edge list [src, dst, w], built here from the decoded tensors. */
async function fullNinEdges(): Promise<Float64Array> {
  const ckpt = await openCheckpoint(model);
  const rows: number[] = [];
  try {
    const W = async (name: string) => {
      const t = ckpt.tensors.get(name)!;
      return { w: decodeFloats(t.dtype as DType, await t.source.read(t.start, t.end)), out: t.shape[0], in: t.shape[1] };
    };
    let x0 = 0;
    let y0 = H;
    const matrix = async (name: string) => {
      const m = await W(name);
      for (let i = 0; i < m.in; i++) for (let j = 0; j < m.out; j++) if (m.w[j * m.in + i] !== 0) rows.push(x0 + i, y0 + j, m.w[j * m.in + i]);
      x0 += m.in;
      y0 += m.out;
    };
    for (let b = 0; b < BLOCKS; b++) {
      const at = `gpt_neox.layers.${b}.`;
      await matrix(`${at}attention.query_key_value.weight`);
      // The pass-through: query i feeds output i; every key and value neuron feeds every output.
      for (let i = 0; i < 3 * H; i++) for (let j = 0; j < H; j++) if (i >= H || i === j) rows.push(x0 + i, y0 + j, 1);
      x0 += 3 * H;
      y0 += H;
      await matrix(`${at}attention.dense.weight`);
      await matrix(`${at}mlp.dense_h_to_4h.weight`);
      await matrix(`${at}mlp.dense_4h_to_h.weight`);
    }
  } finally {
    await ckpt.close();
  }
  return Float64Array.from(rows);
}

const parse = (r: { code: number; stdout: string; stderr: string }) => {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
};

test('nfd MODEL --samples 0 equals nin --sample 0 then nfd of that edge list, node for node, with the right names', async (t) => {
  const { dir, cleanup } = await makeTmpDir();
  try {
    const edges = join(dir, 's0.npy');
    t.is((await runCli(['nin', model, '--sample', '0', '--out', edges])).code, 0);
    const fromEdges = parse(await runCli(['nfd', edges, '--json']));
    const fromModel = parse(await runCli(['nfd', model, '--samples', '0', '--json', '--threads', '2']));
    t.is(fromModel.samples.length, 1);
    const s = fromModel.samples[0];
    t.is(s.sample, 0);
    t.is(s.node.length, 768);
    t.deepEqual(s.node, fromEdges.nodes);
    t.deepEqual(s.nfd, fromEdges.values);
    s.node.forEach((n: number, i: number) => t.deepEqual({ block: s.block[i], matrix: s.matrix[i], neuron: s.neuron[i] }, expectedName(n), `node ${n}`));
    t.deepEqual([fromModel.layout, fromModel.mode, fromModel.layerSample, fromModel.params], ['gpt-neox', 'sampled', 32, { threshold: 200, decimals: 0 }]);
    // The top list is the largest values, named.
    const best = Math.max(...s.nfd);
    t.is(fromModel.top[0].nfd, best);
    t.deepEqual({ ...fromModel.top[0], nfd: undefined, sample: undefined }, { node: s.node[s.nfd.indexOf(best)], ...expectedName(s.node[s.nfd.indexOf(best)]), nfd: undefined, sample: undefined });
    t.is(fromModel.summary.nodes, 768);
    t.is(fromModel.summary.zeros, s.nfd.filter((v: number) => v === 0).length);
  } finally {
    await cleanup();
  }
});

test('nfd MODEL --full equals nfd of an explicit edge list of the full NIN, whatever the shard size', async (t) => {
  const { dir, cleanup } = await makeTmpDir();
  try {
    const edges = join(dir, 'full.npy');
    await writeNpyEdges(edges, await fullNinEdges());
    const fromEdges = parse(await runCli(['nfd', edges, '--json']));
    const total = BLOCKS * (6 * H + I);
    t.is(fromEdges.nodes.length, total);
    for (const shardMb of ['8', '0.05']) {
      const fromModel = parse(await runCli(['nfd', model, '--full', '--json', '--shard-mb', shardMb, '--threads', '2']));
      const s = fromModel.samples[0];
      t.is(s.sample, 'full');
      t.deepEqual(s.node, fromEdges.nodes);
      t.deepEqual(s.nfd, fromEdges.values, `--shard-mb ${shardMb}`);
      t.true(fromModel.stats.shards > (shardMb === '0.05' ? 12 : 11));
    }
    const named = parse(await runCli(['nfd', model, '--full', '--json', '--threads', '1'])).samples[0];
    named.node.forEach((n: number, i: number) => {
      const want = expectedName(n);
      if (named.block[i] !== want.block || named.matrix[i] !== want.matrix || named.neuron[i] !== want.neuron) t.fail(`node ${n} named ${named.block[i]}/${named.matrix[i]}/${named.neuron[i]}`);
    });
    // The pass-through inputs have NFD 0 (all their weights are 1).
    t.true(named.node.every((n: number, i: number) => expectedName(n).matrix !== 'attn_pass' || named.nfd[i] === 0));
  } finally {
    await cleanup();
  }
});

test('nfd MODEL --out writes nfd.csv, report.json, the histogram (its counts add up) and report.html', async (t) => {
  const { dir, cleanup } = await makeTmpDir();
  try {
    const out = join(dir, 'out');
    const r = await runCli(['nfd', model, '--samples', '0,1', '--out', out, '--threads', '2']);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /^.*neox-f16-trained: GPTNeoXForCausalLM, layout gpt-neox, layer sample 32; NFD threshold 200, decimals 0\n1536 nodes, \d+ with NFD 0/);
    const csv = (await readFile(join(out, 'nfd.csv'), 'utf8')).trim().split('\n');
    t.is(csv[0], 'sample,node,block,matrix,neuron,nfd');
    t.is(csv.length, 1 + 1536);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    t.deepEqual(report.samples.map((s: { sample: number }) => s.sample), [0, 1]);
    const first = report.samples[0];
    t.is(csv[1], `0,${first.node[0]},${first.block[0]},${first.matrix[0]},${first.neuron[0]},${first.nfd[0]}`);
    t.is(typeof report.version, 'string');
    const spec = JSON.parse(await readFile(join(out, 'nfd-histogram.vl.json'), 'utf8'));
    const counted = spec.data.values.reduce((a: number, v: { count: number }) => a + v.count, 0);
    t.is(counted, report.summary.nodes - report.summary.zeros);
    t.deepEqual([spec.mark.type, spec.encoding.x.field, spec.encoding.y.field, spec.encoding.color.field], ['bar', 'binStart', 'count', 'matrix']);
    t.deepEqual([...new Set(spec.data.values.map((v: { matrix: string }) => v.matrix))].sort(), ['attn_in', 'attn_out', 'mlp_in', 'mlp_out']);
    const html = await readFile(join(out, 'report.html'), 'utf8');
    t.true(html.includes('Top 20 neurons by NFD'));
    t.true((await readFile(join(out, 'nfd-histogram.svg'), 'utf8')).startsWith('<svg'));
  } finally {
    await cleanup();
  }
});

test('nfd of an edge list refuses the flags of nfd MODEL, naming them', async (t) => {
  const r = await runCli(['nfd', join(conformanceDir, 'cases', 'sparse-degrees', 'edges.npy'), '--full', '--layer-sample', '8']);
  t.is(r.code, 2);
  t.is(r.stderr, `neuromfa: --full, --layer-sample apply to nfd MODEL (a checkpoint), but ${join(conformanceDir, 'cases', 'sparse-degrees', 'edges.npy')} is an edge list\n`);
  const both = await runCli(['nfd', model, '--full', '--samples', '0']);
  t.is(both.code, 2);
  t.is(both.stderr, 'neuromfa: --samples and --full exclude each other\n');
});

test('emergence --nfd: each checkpoint summarised as nfd MODEL gives it, binned on one grid for the violin', async (t) => {
  const series = join(conformanceDir, 'series', 'tiny-neox-f16');
  const { dir, cleanup } = await makeTmpDir();
  try {
    const out = join(dir, 'run');
    const r = await runCli(['emergence', join(series, 'step0'), join(series, 'step512'), '--samples', '0', '--nfd', '--out', out, '--threads', '2']);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /median NFD per checkpoint: step0 \d\.\d{4}, step512 \d\.\d{4}\n/);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    const single = parse(await runCli(['nfd', join(series, 'step512'), '--samples', '0', '--json']));
    const [first, last] = report.nfd.checkpoints;
    t.deepEqual(last.summary, single.summary);
    t.deepEqual(report.nfd.params, { threshold: 200, decimals: 0 });
    const { lo, hi, bins } = report.nfd.grid;
    t.is(lo, Math.min(first.summary.min, last.summary.min));
    t.is(hi, Math.max(first.summary.max, last.summary.max));
    t.is(last.counts.reduce((a: number, b: number) => a + b, 0), last.summary.nodes - last.summary.zeros);
    t.is(last.counts.length, bins);
    const csv = (await readFile(join(out, 'nfd-distribution.csv'), 'utf8')).trim().split('\n');
    t.is(csv[0], 'checkpoint,step,nodes,zeros,mean,std,min,q25,median,q75,max,nfd_threshold,nfd_decimals');
    const s = last.summary;
    t.is(csv[2], `step512,512,${s.nodes},${s.zeros},${s.mean},${s.std},${s.min},${s.q25},${s.median},${s.q75},${s.max},200,0`);
    const violin = JSON.parse(await readFile(join(out, 'nfd-violin.vl.json'), 'utf8'));
    const rows = violin.vconcat[0].data.values;
    for (const label of ['step0', 'step512']) {
      const share = rows.filter((v: { label: string }) => v.label === label).reduce((a: number, v: { density: number }) => a + v.density, 0);
      t.true(Math.abs(share - 1) < 1e-4, `${label} densities add to ${share}`);
    }
    t.deepEqual([violin.vconcat[0].spec.mark.type, violin.vconcat[0].spec.encoding.x.stack, violin.vconcat[0].facet.column.field], ['area', 'center', 'label']);
    t.deepEqual(violin.vconcat[1].data.values.map((m: { step: number; median: number }) => m.step), [0, 512]);
  } finally {
    await cleanup();
  }
});
