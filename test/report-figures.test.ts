import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { emergenceFigures } from '../coordinator/report/emergence-figures.js';
import { renderSvg } from '../coordinator/report/figure.js';
import { stepAxis, symlogTicks } from '../coordinator/report/step-axis.js';
import { toCsv } from '../coordinator/report/csv.js';
import { decodePng, inkOf } from './helpers/png-pixels.js';
import { runCli } from './helpers/run-cli.js';
import { conformanceDir, readJson, repoRoot } from './helpers/shared.js';
import { makeTmpDir } from './helpers/tmp.js';

/**
 * Issue 11's figures and tables, made by the CLI from the real float16 training series: the
 * Vega-Lite spec of each figure is checked (series, scales, ticks, the step of every point),
 * and its SVG and PNG for clean tick labels and ink.
 */

const series = join(conformanceDir, 'series', 'tiny-neox-f16');
const STEPS = ['step0', 'step8', 'step64', 'step512'];
const r6 = (v: number) => Number(v.toPrecision(6));
const version: string = readJson(join(repoRoot, 'package.json')).version;

let T = '';
let cleanup: () => Promise<void> = async () => undefined;
let curve: any;
let single: any;
test.before(async () => {
  ({ dir: T, cleanup } = await makeTmpDir('neuromfa-report-figures-'));
  const [e, a] = await Promise.all([
    runCli(['emergence', ...STEPS.map((s) => join(series, s)), '--samples', '0-2', '--threads', '1', '--json', '--out', join(T, 'e')]),
    runCli(['analyze', join(series, 'step512'), '--samples', '0-2', '--threads', '1', '--json', '--out', join(T, 'a')]),
  ]);
  if (e.code !== 0 || a.code !== 0) throw new Error(`${e.stderr}${a.stderr}`);
  curve = JSON.parse(e.stdout);
  single = JSON.parse(a.stdout);
});
test.after.always(() => cleanup());

const spec = (dir: string, name: string) => readJson(join(T, dir, `${name}.vl.json`));
const svgTexts = (dir: string, name: string) => [...readFileSync(join(T, dir, `${name}.svg`), 'utf8').matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);

test('emergence --out writes the figures three ways, the tables and report.html', (t) => {
  const figures = ['emergence', 'spectra', 'alpha0-width'].flatMap((n) => [`${n}.png`, `${n}.svg`, `${n}.vl.json`]);
  t.deepEqual(readdirSync(join(T, 'e')).sort(), [...figures, 'emergence.csv', 'report.html', 'report.json', 'samples.csv'].sort());
  t.deepEqual(readdirSync(join(T, 'a')).sort(), ['report.html', 'report.json', 'samples.csv', 'shards', 'spectrum.png', 'spectrum.svg', 'spectrum.vl.json', 'tau.png', 'tau.svg', 'tau.vl.json']);
});

test('E against step: symlog step axis with 0 and 1-2-5 ticks, one point per checkpoint at its step, E ± std', (t) => {
  const s = spec('e', 'emergence');
  t.is(s.title.text, 'Emergence E across training — tiny-neox-f16');
  t.deepEqual(s.title.subtitle, [
    'tiny-neox-f16 · layout gpt-neox · 4 checkpoints (step0 … step512)',
    'samples 0-2, layer sample 32, filter 0',
    `threshold 150, decimals 0, min-neighbors 10, q -3:3:0.1 (61 values) · neuromfa ${version}`,
  ]);
  t.is(s.encoding.x.field, 'step');
  t.is(s.encoding.x.scale.type, 'symlog');
  t.deepEqual(s.encoding.x.scale.domain, [0, 512]);
  t.deepEqual(s.encoding.x.axis.values, [0, 1, 2, 5, 10, 20, 50, 100, 200, 500]);
  t.deepEqual(s.data.values.map((v: any) => [v.label, v.step]), STEPS.map((l) => [l, Number(l.slice(4))]));
  s.data.values.forEach((v: any, i: number) => {
    const c = curve.checkpoints[i];
    t.is(v.E, r6(c.E));
    t.is(v.ELow, r6(c.E - c.EStd));
    t.is(v.EHigh, r6(c.E + c.EStd));
  });
  t.deepEqual(s.layer.map((l: any) => l.mark.type), ['rule', 'rule', 'line'], 'zero line, error bars, the curve');
  // The rendered axis shows exactly those ticks, as clean numbers.
  const texts = svgTexts('e', 'emergence');
  for (const tick of ['0', '1', '2', '5', '10', '20', '50', '100', '200', '500']) t.true(texts.includes(tick), `tick ${tick}`);
  t.false(texts.some((x) => /e-\d/.test(x)), texts.join(' '));
});

test('f(alpha) of every checkpoint: 4 series of 60 points, mean ± std of the kept samples, colour bar on the step', (t) => {
  const s = spec('e', 'spectra');
  const rows = s.data.values;
  t.deepEqual([...new Set(rows.map((r: any) => r.label))], STEPS, 'one series per checkpoint');
  for (const l of STEPS) t.is(rows.filter((r: any) => r.label === l).length, 60, `${l}: one point per alpha`);
  const [band, line] = s.layer;
  t.is(band.mark.type, 'area');
  t.is(line.mark.type, 'line');
  t.is(line.encoding.color.field, 'step');
  t.is(line.encoding.color.scale.type, 'symlog');
  t.is(line.encoding.color.legend.type, 'gradient');
  t.true(readFileSync(join(T, 'e', 'spectra.svg'), 'utf8').includes('linearGradient'), 'the legend is a colour bar');
  // The mean and std at q = 0 (k = 30) of step512, from report.json's samples.
  const kept = curve.perCheckpoint[3].samples;
  const f = kept.map((x: any) => x.f[30]);
  const mean = f.reduce((a: number, b: number) => a + b, 0) / f.length;
  const std = Math.sqrt(f.reduce((a: number, b: number) => a + (b - mean) ** 2, 0) / f.length);
  const row = rows.find((r: any) => r.label === 'step512' && r.k === 30);
  t.is(row.q, 0);
  t.is(row.step, 512);
  t.is(row.f, r6(mean));
  t.is(row.fHigh, r6(mean + std));
});

test('alpha0 and width against step: two panels on the same symlog axis, error bars of the population std', (t) => {
  const s = spec('e', 'alpha0-width');
  t.is(s.vconcat.length, 2);
  for (const panel of s.vconcat) {
    t.is(panel.encoding.x.scale.type, 'symlog');
    t.deepEqual(panel.layer.map((l: any) => l.mark.type), ['rule', 'line']);
  }
  t.deepEqual(s.vconcat.map((p: any) => p.layer[1].encoding.y.field), ['alpha0', 'width']);
  s.data.values.forEach((v: any, i: number) => {
    const c = curve.checkpoints[i];
    t.is(v.step, [0, 8, 64, 512][i]);
    t.is(v.alpha0, r6(c.alpha0.mean));
    t.is(v.alpha0Low, r6(c.alpha0.mean - c.alpha0.std));
    t.is(v.widthHigh, r6(c.width.mean + c.width.std));
  });
});

test('analyze figures: per-sample spectra, the mean ± std, alpha0 and width marked, tau(q); titles name the model', (t) => {
  const s = spec('a', 'spectrum');
  t.is(s.title.text, 'f(alpha) — step512', 'the directory name, not a ../ path');
  t.true(s.title.subtitle[0].startsWith('step512 · GPTNeoXForCausalLM, layout gpt-neox'));
  t.deepEqual([...new Set(s.datasets.samples.map((r: any) => r.sample))], ['sample 0', 'sample 1', 'sample 2']);
  t.is(s.datasets.mean.length, 60);
  const [marks] = s.datasets.marks;
  t.is(marks.alpha0, r6(single.mean.alpha0));
  t.is(marks.width, r6(single.mean.width));
  t.true(Math.abs(marks.hi - marks.lo - single.mean.width) < 1e-5, 'the width bar is as long as the mean width (6 digits each end)');
  const tau = spec('a', 'tau');
  t.is(tau.encoding.x.field, 'q');
  t.is(tau.data.values.length, 3 * 61);
  // Top tick of f is 0, printed as a clean number (it was -2.77555756156e-17).
  const texts = svgTexts('a', 'spectrum');
  t.true(texts.includes('0.00') || texts.includes('0.0') || texts.includes('0'), texts.join(' '));
  t.false(texts.some((x) => /e-\d/.test(x)), texts.join(' '));
});

test('every PNG is drawn: resvg output with text and marks, not a blank page', (t) => {
  for (const [dir, name] of [['e', 'emergence'], ['e', 'spectra'], ['e', 'alpha0-width'], ['a', 'spectrum'], ['a', 'tau']]) {
    const png = decodePng(readFileSync(join(T, dir, `${name}.png`)));
    const svgWidth = Number(/width="(\d+)"/.exec(readFileSync(join(T, dir, `${name}.svg`), 'utf8'))![1]);
    t.is(png.width, 2 * svgWidth, `${name}: rendered at 2x`);
    const ink = inkOf(png);
    t.true(ink.colours > 50, `${name}: ${ink.colours} colours`);
    t.true(ink.inked > 0.02, `${name}: ${(100 * ink.inked).toFixed(1)}% inked`);
  }
});

test('emergence.csv: numeric step, E_std, mode and parameters; no commit column for a local series; samples.csv', (t) => {
  const lines = readFileSync(join(T, 'e', 'emergence.csv'), 'utf8').trimEnd().split('\n');
  t.is(
    lines[0],
    'label,step,model,E,E_std,alpha0_mean,alpha0_std,width_mean,width_std,samples_kept,samples_total,mode,layer_sample,threshold,decimals,min_neighbors,q_min,q_max,q_count,filter',
  );
  const rows = lines.slice(1).map((l) => l.split(','));
  t.deepEqual(
    rows.map((r) => r[1]),
    ['0', '8', '64', '512'],
  );
  rows.forEach((r, i) => {
    t.is(Number(r[3]), curve.checkpoints[i].E);
    t.is(Number(r[4]), curve.checkpoints[i].EStd);
    t.deepEqual(r.slice(9), ['3', '3', 'sampled', '32', '150', '0', '10', '-3', '3', '61', '0']);
  });
  const samples = readFileSync(join(T, 'e', 'samples.csv'), 'utf8').trimEnd().split('\n');
  t.is(samples[0], 'checkpoint,step,sample,alpha0,width,nodes_selected,kept');
  t.is(samples.length, 1 + 4 * 3);
  t.is(samples[12].split(',').slice(0, 3).join(','), 'step512,512,2');
  t.is(Number(samples[12].split(',')[3]), curve.perCheckpoint[3].samples[2].alpha0);
});

test('E_std is the population std of the per-sample E against the initial means', (t) => {
  const [first] = curve.checkpoints;
  const c = curve.checkpoints[2];
  const per = curve.perCheckpoint[2].samples.map((s: any) => (s.width / first.width.mean) * Math.log(first.alpha0.mean / s.alpha0));
  const m = per.reduce((a: number, b: number) => a + b, 0) / per.length;
  t.is(r6(c.EStd), r6(Math.sqrt(per.reduce((a: number, b: number) => a + (b - m) ** 2, 0) / per.length)));
});

test('report.json: per sample alpha, f and qAlpha of one length, radii, fit; version, command, timestamp, std definition', (t) => {
  const saved = readJson(join(T, 'e', 'report.json'));
  t.is(saved.version, version);
  t.regex(saved.command, /^neuromfa emergence .*step0 .*--samples 0-2 /);
  t.true(Math.abs(Date.parse(saved.createdAt) - Date.now()) < 3600_000, saved.createdAt);
  t.is(saved.stdDefinition, 'population standard deviation over samples (ddof 0, as the reference np.std)');
  t.deepEqual(saved.checkpoints.map((c: any) => c.step), [0, 8, 64, 512]);
  for (const p of saved.perCheckpoint) {
    for (const s of p.samples) {
      t.deepEqual(Object.keys(s).sort(), ['alpha', 'alpha0', 'f', 'fit', 'kept', 'nodesSelected', 'q', 'qAlpha', 'radii', 'sample', 'tau', 'width']);
      t.is(s.alpha.length, 60);
      t.is(s.f.length, 60);
      t.deepEqual(s.qAlpha, s.q.slice(0, 60));
      t.is(s.kept, true);
    }
  }
  const analyzed = readJson(join(T, 'a', 'report.json'));
  t.is(analyzed.version, version);
  t.is(analyzed.samples[0].qAlpha.length, analyzed.samples[0].alpha.length);
});

test('step axis: symlog with decade ticks for Pythia’s 154 steps, linear for the demo, categories without numbers', (t) => {
  const pythia = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, ...Array.from({ length: 143 }, (_, i) => 1000 * (i + 1))];
  t.is(pythia.length, 154);
  const p = stepAxis(
    pythia.map((s) => `step${s}`),
    pythia,
  );
  t.is(p.scale, 'symlog');
  t.deepEqual((p.x.axis as any).values, [0, 1, 10, 100, 1000, 10000, 100000]);
  t.deepEqual(symlogTicks(512), [0, 1, 2, 5, 10, 20, 50, 100, 200, 500]);
  const demo = stepAxis(['step0', 'step1', 'step2', 'step3', 'step4'], [0, 1, 2, 3, 4]);
  t.is(demo.scale, 'linear');
  t.deepEqual(demo.x.scale, { domain: [0, 4], nice: false, padding: 12 });
  t.is((demo.x.axis as any).tickMinStep, 1);
  const named = stepAxis(['init', 'mid', 'final'], [null, null, null]);
  t.is(named.scale, 'category');
  t.deepEqual((named.x as any).sort, ['init', 'mid', 'final']);
});

test('CSV cells: quotes only where needed, empty for missing', (t) => {
  t.is(toCsv(['a', 'b', 'c'], [['x,y', null, 1.5], ['say "hi"', 0, true]]), 'a,b,c\n"x,y",,1.5\n"say ""hi""",0,true\n');
});

test('154 checkpoints (Pythia’s steps): ticks 0 1 10 100 1k 10k 100k, bands instead of error bars, no per-point hover layer', async (t) => {
  const pythia = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, ...Array.from({ length: 143 }, (_, i) => 1000 * (i + 1))];
  const stat = (mean: number) => ({ mean, std: 0.01, samples: [0, 1] });
  const sample = (k: number) => ({ sample: k, kept: true, alpha0: 1, width: 0.5, nodesSelected: 9, q: [-1, 0, 1], tau: [-2, 0, 1], qAlpha: [-1, 0], alpha: [2, 1], f: [-1, 0], radii: [2, 3], fit: { r2: [1, 1, 1], stderr: [0, 0, 0] } });
  const figures = emergenceFigures({
    series: 'pythia',
    subtitle: ['x'],
    checkpoints: pythia.map((s, i) => ({ label: `step${s}`, step: s, model: `m${s}`, alpha0: stat(1 - i / 1000), width: stat(0.5), E: i / 1000, EStd: 0.001 })),
    samples: pythia.map(() => [sample(0), sample(1)]),
  });
  const byName = Object.fromEntries(figures.map((f) => [f.name, f.spec as any]));
  t.deepEqual(byName.emergence.layer.map((l: any) => l.mark.type), ['rule', 'area', 'line']);
  t.is(byName.spectra.layer.length, 2, 'band and line only');
  t.is(new Set(byName.spectra.data.values.map((r: any) => r.label)).size, 154);
  const svg = await renderSvg(byName.emergence);
  const ticks = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]).filter((x) => /^\d+k?$/.test(x));
  t.deepEqual(ticks, ['0', '1', '10', '100', '1k', '10k', '100k']);
});
