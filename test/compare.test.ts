import test from 'ava';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from './helpers/run-cli.js';
import { conformanceDir } from './helpers/shared.js';
import { makeTmpDir } from './helpers/tmp.js';

const params = { threshold: 150, decimals: 0, minNeighbors: 10, q: [-1, 0, 1] };

/** An emergence report.json as `emergence --out` writes it, reduced to what compare reads. */
async function writeRun(dir: string, name: string, size: number, points: Array<[number, number, number | null]>, extra: Record<string, unknown> = {}): Promise<string> {
  const run = join(dir, name);
  await mkdir(run, { recursive: true });
  const report = {
    layout: 'gpt-neox',
    mode: 'sampled',
    params,
    size: { layoutParameters: Math.round(size * 0.8), checkpointParameters: size, hidden: 64, blocks: 2 },
    checkpoints: points.map(([step, E, EStd]) => ({ label: `step${step}`, step, model: `hf://EleutherAI/${name}@step${step}`, E, EStd })),
    ...extra,
  };
  await writeFile(join(run, 'report.json'), JSON.stringify(report));
  return run;
}

test('compare: E against step for every run and E at the largest shared step against size', async (t) => {
  const { dir, cleanup } = await makeTmpDir();
  try {
    const big = await writeRun(dir, 'pythia-410m', 405_334_016, [[0, 0, 0], [1000, 0.1, 0.01], [143000, 0.5, 0.02]]);
    const small = await writeRun(dir, 'pythia-160m', 162_322_944, [[0, 0, 0], [1000, 0.08, 0.01], [143000, 0.3, 0.03]]);
    const partial = await writeRun(dir, 'pythia-70m', 70_426_624, [[0, 0, 0], [1000, 0.05, null]]);
    const out = join(dir, 'cmp');
    const r = await runCli(['compare', big, small, partial, '--step', '143000', '--out', out]);
    t.is(r.code, 0, r.stderr);
    t.is(r.stderr, '');
    t.regex(r.stdout, /^E at step 143000, by model size:\n/);
    t.regex(r.stdout, /no E at step 143000: EleutherAI\/pythia-70m\n/);
    const size = (await readFile(join(out, 'compare-size.csv'), 'utf8')).trim().split('\n');
    t.deepEqual(size, [
      'run,checkpoint_parameters,layout_parameters,checkpoint,step,E,E_std',
      'EleutherAI/pythia-160m,162322944,129858355,step143000,143000,0.3,0.03',
      'EleutherAI/pythia-410m,405334016,324267213,step143000,143000,0.5,0.02',
    ]);
    const all = (await readFile(join(out, 'compare.csv'), 'utf8')).trim().split('\n');
    t.is(all.length, 1 + 3 + 3 + 2);
    t.is(all[8], 'EleutherAI/pythia-70m,70426624,56341299,step1000,1000,0.05,');
    const steps = JSON.parse(await readFile(join(out, 'compare-emergence.vl.json'), 'utf8'));
    const line = steps.layer[2];
    t.deepEqual(line.encoding.color.sort, ['EleutherAI/pythia-70m', 'EleutherAI/pythia-160m', 'EleutherAI/pythia-410m']);
    t.is(line.encoding.x.scale.type, 'symlog');
    t.is(steps.data.values.length, 8);
    t.deepEqual(steps.data.values[1], { run: 'EleutherAI/pythia-410m', label: 'step1000', step: 1000, E: 0.1, ELow: 0.09, EHigh: 0.11 });
    const bySize = JSON.parse(await readFile(join(out, 'compare-size.vl.json'), 'utf8'));
    t.deepEqual([bySize.encoding.x.field, bySize.encoding.x.scale.type], ['parameters', 'log']);
    t.deepEqual(bySize.data.values.map((v: { run: string; parameters: number; E: number }) => [v.run, v.parameters, v.E]), [
      ['EleutherAI/pythia-160m', 162322944, 0.3],
      ['EleutherAI/pythia-410m', 405334016, 0.5],
    ]);
    const html = await readFile(join(out, 'report.html'), 'utf8');
    t.true(html.includes('data-figure="compare-size"') && html.includes('E at step 143000'));
    // Without --step: the largest step every run has E at.
    const auto = JSON.parse((await runCli(['compare', big, small, partial, '--json'])).stdout);
    t.is(auto.step, 1000);
    t.deepEqual(auto.atStep.map((p: { name: string }) => p.name), ['EleutherAI/pythia-70m', 'EleutherAI/pythia-160m', 'EleutherAI/pythia-410m']);
  } finally {
    await cleanup();
  }
});

test('compare names runs, notes differing parameters, and refuses reports it cannot compare', async (t) => {
  const { dir, cleanup } = await makeTmpDir();
  try {
    const a = await writeRun(dir, 'a', 1000, [[0, 0, 0], [10, 0.1, 0]]);
    const b = await writeRun(dir, 'b', 2000, [[0, 0, 0], [10, 0.2, 0]], { mode: 'full' });
    const named = await runCli(['compare', a, b, '--names', 'small,large', '--json']);
    t.is(named.code, 0, named.stderr);
    t.deepEqual(JSON.parse(named.stdout).runs.map((r: { name: string }) => r.name), ['small', 'large']);
    t.is(named.stderr, 'note: the runs differ in mode: small: sampled; large: full\n');
    const old = join(dir, 'old');
    await mkdir(old);
    await writeFile(join(old, 'report.json'), JSON.stringify({ checkpoints: [] }));
    const r = await runCli(['compare', a, old]);
    t.deepEqual([r.code, r.stderr], [3, `neuromfa: ${join(old, 'report.json')}: no model size ("size"): written by an older neuromfa; run emergence again to compare it\n`]);
    const none = await runCli(['compare', a, join(dir, 'nothing')]);
    t.deepEqual([none.code, none.stderr], [3, `neuromfa: ${join(dir, 'nothing', 'report.json')}: no such file (compare reads the report.json that emergence --out writes)\n`]);
    const disjoint = await writeRun(dir, 'c', 3000, [[5, 0, 0]]);
    const d = await runCli(['compare', a, disjoint]);
    t.deepEqual([d.code, d.stderr], [2, 'neuromfa: the runs share no training step with a value of E: pick one with --step N\n']);
    t.is((await runCli(['compare', a])).code, 2);
  } finally {
    await cleanup();
  }
});

/** Elements of every tensor, read straight from the safetensors header (8-byte length, then JSON). */
async function tensorElements(file: string): Promise<number> {
  const bytes = await readFile(file);
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
  return Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .reduce((a, [, v]) => a + (v as { shape: number[] }).shape.reduce((x, y) => x * y, 1), 0);
}

test("emergence's report.json carries the model size compare plots against", async (t) => {
  const series = join(conformanceDir, 'series', 'tiny-neox-f16');
  const { dir, cleanup } = await makeTmpDir();
  try {
    const out = join(dir, 'run');
    const r = await runCli(['emergence', join(series, 'step0'), join(series, 'step8'), '--samples', '0', '--out', out, '--threads', '2']);
    t.is(r.code, 0, r.stderr);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    // hidden 64, 2 blocks, intermediate 256: per block qkv 192x64, dense 64x64, h_to_4h 256x64, 4h_to_h 64x256.
    t.deepEqual(report.size, { layoutParameters: 2 * (192 * 64 + 64 * 64 + 256 * 64 + 64 * 256), checkpointParameters: await tensorElements(join(series, 'step0', 'model.safetensors')), hidden: 64, blocks: 2 });
  } finally {
    await cleanup();
  }
});
