import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readBenchmarks, parseHarnessJson, parseScoresCsv } from '../coordinator/analysis/benchmarks-read.js';
import { correlateBenchmarks, pickTasks } from '../coordinator/analysis/benchmarks.js';
import { correlationsCsv } from '../coordinator/report/benchmarks-report.js';
import { bootstrapInterval, correlationPValue, incompleteBeta, logGamma, pearson, ranks, spearman } from '../coordinator/analysis/stats.js';
import { runCli } from './helpers/run-cli.js';
import { sharedDir, within } from './helpers/shared.js';
import { makeTmpDir } from './helpers/tmp.js';

const pythia = join(sharedDir, 'benchmarks', 'pythia-160m-deduped');
const close = (a: number | null, b: number, tol = 1e-12) => a !== null && within(a, b, tol);

// Reference values below were computed with SciPy 1.17.1 (scipy.special.betainc,
// scipy.stats.pearsonr / spearmanr / rankdata) and Python's math.lgamma on this machine.

test('logGamma and the regularized incomplete beta match SciPy', (t) => {
  t.true(close(logGamma(0.5), 0.5723649429247004, 1e-14));
  t.true(close(logGamma(10.3), 13.48203678613836, 1e-14));
  t.true(close(logGamma(100.5), 361.4355404677776, 1e-14));
  t.true(close(incompleteBeta(0.3, 2.5, 0.5), 0.018927124071945658));
  t.true(close(incompleteBeta(0.9, 10, 3), 0.889130022255));
  t.true(close(incompleteBeta(0.01, 0.5, 0.5), 0.06376856085851985));
  t.true(close(incompleteBeta(0.95, 50, 0.5), 0.02387270549699076));
  t.is(incompleteBeta(0, 2, 3), 0);
  t.is(incompleteBeta(1, 2, 3), 1);
});

test('Pearson and Spearman with p-values match SciPy on small vectors', (t) => {
  const x = [0.0, 0.12, 0.35, 0.51, 0.62, 0.8, 0.91];
  const y = [0.25, 0.27, 0.31, 0.3, 0.38, 0.41, 0.4];
  t.true(close(pearson(x, y), 0.9499911706570778));
  t.true(close(correlationPValue(pearson(x, y)!, 7), 0.0010455269865389672, 1e-10));
  t.true(close(spearman(x, y), 0.9285714285714288));
  t.true(close(correlationPValue(spearman(x, y)!, 7), 0.0025194724037946887, 1e-10));
  // A tie in y (7 twice): Spearman uses average ranks.
  const a = [1, 2, 3, 4, 5];
  const b = [5, 6, 7, 8, 7];
  t.true(close(pearson(a, b), 0.8320502943378436));
  t.true(close(correlationPValue(pearson(a, b)!, 5), 0.0805095732984986, 1e-10));
  t.true(close(spearman(a, b), 0.8207826816681233));
  t.true(close(correlationPValue(spearman(a, b)!, 5), 0.08858700531354384, 1e-10));
  t.deepEqual(Array.from(ranks([3, 1, 4, 1, 5, 9, 2, 6, 5])), [4, 1.5, 5, 1.5, 6.5, 9, 3, 8, 6.5]);
  t.is(pearson([1, 1, 1], [1, 2, 3]), null);
  t.is(correlationPValue(1, 5), 0);
  t.is(correlationPValue(0.5, 2), null);
});

test('the bootstrap interval is seeded: the same inputs give the same interval, a perfect line gives [1, 1]', (t) => {
  const x = [0.0, 0.12, 0.35, 0.51, 0.62, 0.8, 0.91];
  const y = [0.25, 0.27, 0.31, 0.3, 0.38, 0.41, 0.4];
  const opts = { resamples: 2000, seed: 7 };
  const one = bootstrapInterval(x, y, pearson, opts)!;
  const two = bootstrapInterval(x, y, pearson, opts)!;
  t.deepEqual(one, two);
  t.true(one.low < 0.9499911706570778 && 0.9499911706570778 <= one.high && one.high <= 1);
  t.not(bootstrapInterval(x, y, pearson, { resamples: 2000, seed: 8 })!.low, one.low);
  const line = bootstrapInterval([1, 2, 3, 4], [3, 5, 7, 9], pearson, opts)!;
  t.is(line.low, 1);
  t.is(line.high, 1);
  // Resamples drawing one pair only have no coefficient and are not counted.
  t.true(line.resamples < 2000 && line.resamples > 1900);
});

test('reads the real Pythia zero-shot files (lm-evaluation-harness 0.3): 27 steps, revision from model_args', async (t) => {
  const scores = await readBenchmarks(join(pythia, 'zero-shot'));
  const arc = scores.filter((s) => s.task === 'arc_easy');
  t.deepEqual(
    arc.map((s) => s.step),
    [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 3000, 13000, 23000, 33000, 43000, 53000, 63000, 73000, 83000, 93000, 103000, 113000, 123000, 133000, 143000],
  );
  t.true(arc.every((s) => s.shots === 0 && s.metric === 'acc'));
  t.is(arc.find((s) => s.step === 1000)!.value, 0.31186868686868685);
  t.is(scores.find((s) => s.task === 'lambada_openai' && s.step === 143000)!.value, 0.3417426741703862);
  t.deepEqual(pickTasks(scores, undefined, 'x'), ['lambada_openai', 'piqa', 'arc_easy', 'arc_challenge']);
});

test('reads the real five-shot files, and both shot counts together as separate series', async (t) => {
  const five = await readBenchmarks(join(pythia, 'five-shot'));
  const piqa = five.filter((s) => s.task === 'piqa');
  t.is(piqa.length, 15);
  t.true(piqa.every((s) => s.shots === 5));
  t.is(piqa.find((s) => s.step === 3000)!.value, 0.5908596300326442);
  const both = await readBenchmarks(pythia);
  const arc = both.filter((s) => s.task === 'arc_easy');
  t.deepEqual([arc.filter((s) => s.shots === 0).length, arc.filter((s) => s.shots === 5).length], [27, 15]);
});

test('E against the real arc_easy scores: coefficients and p-values equal SciPy on the same pairs', async (t) => {
  const scores = await readBenchmarks(pythia);
  const steps = [...new Set(scores.map((s) => s.step))];
  // A made-up E that grows with log step; plus a checkpoint without a score and one without a step.
  const checkpoints = [...steps.map((step) => ({ label: `step${step}`, step, E: Math.log1p(step) / 10 })), { label: 'step7', step: 7, E: 0.2 }, { label: 'final', step: null, E: 0.3 }];
  const c = correlateBenchmarks(checkpoints, scores, ['arc_easy'], pythia);
  t.deepEqual(c.unmatched, ['step7', 'final']);
  const [zero, five] = c.correlations;
  t.deepEqual([zero.shots, zero.n, five.shots, five.n], [0, 27, 5, 15]);
  // scipy.stats.pearsonr / spearmanr of (log1p(step)/10, acc) over the zero-shot and five-shot files.
  t.true(close(zero.pearson.value, 0.9528349102860367));
  t.true(close(zero.pearson.p, 1.8688311766149415e-14, 1e-8));
  t.true(close(zero.spearman.value, 0.8857321166454123));
  t.true(close(zero.spearman.p, 8.214082418391428e-10, 1e-8));
  t.true(close(five.pearson.value, 0.8060056190757603));
  t.true(close(five.pearson.p, 0.0002851290460839018, 1e-9));
  t.true(close(five.spearman.value, 0.4450403921861809));
  t.true(close(five.spearman.p, 0.09645185561046044, 1e-9));
  t.true(zero.pearson.ci!.low < zero.pearson.value! && zero.pearson.value! < zero.pearson.ci!.high);
  const csv = correlationsCsv(c).split('\n');
  t.is(csv[0], 'task,shots,metric,n,pearson_r,pearson_p,pearson_ci_low,pearson_ci_high,spearman_rho,spearman_p,spearman_ci_low,spearman_ci_high');
  t.true(csv[1].startsWith(`arc_easy,0,acc,27,${zero.pearson.value},${zero.pearson.p},${zero.pearson.ci!.low},`));
  t.true(csv[2].startsWith('arc_easy,5,acc,15,'));
});

test('reads a hand-written lm-evaluation-harness 0.4 file and a tidy CSV', async (t) => {
  const v04 = JSON.stringify({
    results: {
      arc_easy: { alias: 'arc_easy', 'acc,none': 0.61, 'acc_stderr,none': 0.01, 'acc_norm,none': 0.58 },
      lambada_openai: { alias: 'lambada_openai', 'perplexity,none': 12.5, 'acc,none': 0.52 },
      gsm8k: { 'exact_match,strict-match': 0.02 },
    },
    'n-shot': { arc_easy: 0, lambada_openai: 0 },
    configs: { gsm8k: { num_fewshot: 5 } },
    config: { model: 'hf', model_args: 'pretrained=EleutherAI/pythia-160m,revision=step2000,dtype=float16' },
  });
  const scores = parseHarnessJson('results_2024-05-01T10-00-00.json', v04, 'acc');
  t.deepEqual(
    scores.map(({ task, step, value, shots }) => ({ task, step, value, shots })),
    [
      { task: 'arc_easy', step: 2000, value: 0.61, shots: 0 },
      { task: 'lambada_openai', step: 2000, value: 0.52, shots: 0 },
    ],
  );
  t.is(parseHarnessJson('x/step9/results.json', JSON.stringify({ results: { gsm8k: { 'exact_match,strict-match': 0.02 } }, configs: { gsm8k: { num_fewshot: 5 } }, config: { model_args: { pretrained: 'p' } } }), 'exact_match')[0].shots, 5);
  t.is(parseHarnessJson('x/step9/results.json', '{"results":{},"config":{"model_args":"pretrained=p"}}', 'acc').length, 0);
  t.throws(() => parseHarnessJson('results.json', '{"results":{},"config":{"model_args":"pretrained=p,revision=main"}}', 'acc'), {
    message: 'results.json: no training step: config.model_args names no revision=step<N> (it names revision=main) and the file name has no step<N>',
  });
  const csv = parseScoresCsv('s.csv', 'step,task,metric,value,shots\n0,piqa,acc,0.52,0\n1000,piqa,acc,0.6,\n1000,piqa,acc_norm,0.7,0\n', 'acc');
  t.deepEqual(csv.map(({ step, task, value, shots }) => [step, task, value, shots]), [[0, 'piqa', 0.52, 0], [1000, 'piqa', 0.6, null]]);
  t.throws(() => parseScoresCsv('s.csv', 'step,task,value\n', 'acc'), { message: 's.csv: the header must name step, task, metric and value; it has no "metric" column' });
  t.throws(() => parseScoresCsv('s.csv', 'step,task,metric,value\nten,piqa,acc,0.5\n', 'acc'), { message: 's.csv line 2: step "ten" is not a non-negative integer' });

  const { dir, cleanup } = await makeTmpDir();
  try {
    await writeFile(join(dir, 'results_2024-05-01T10-00-00.json'), v04);
    await writeFile(join(dir, 'more.csv'), 'step,task,metric,value,shots\n2000,arc_easy,acc,0.62,0\n');
    await t.throwsAsync(readBenchmarks(dir), { message: `${join(dir, 'results_2024-05-01T10-00-00.json')}: arc_easy (0-shot) at step 2000 is 0.61, but more.csv says 0.62` });
    await writeFile(join(dir, 'more.csv'), 'step,task,metric,value\n4000,arc_easy,acc,0.7\n');
    const all = await readBenchmarks(dir);
    t.deepEqual(all.map((s) => [s.task, s.step, s.shots]), [['arc_easy', 4000, null], ['arc_easy', 2000, 0], ['lambada_openai', 2000, 0]]);
    await t.throwsAsync(readBenchmarks(join(dir, 'none')), { message: `${join(dir, 'none')}: no such file or directory` });
  } finally {
    await cleanup();
  }
});

test('--tasks must name present tasks; the default takes the reference tasks present', (t) => {
  const scores = [{ step: 0, task: 'piqa', metric: 'acc', value: 0.5, shots: 0, source: 'f' }];
  t.deepEqual(pickTasks(scores, undefined, 'f'), ['piqa']);
  t.throws(() => pickTasks(scores, ['mmlu'], 'f'), { message: '--tasks: mmlu not in f (it has 1 tasks, e.g. piqa)' });
});

test('emergence --benchmarks on a real series: correlations.csv, benchmarks.csv, both figures and the report section', async (t) => {
  const series = join(sharedDir, 'conformance', 'series', 'tiny-neox-f16');
  const { dir, cleanup } = await makeTmpDir();
  try {
    const scores = join(dir, 'scores.csv');
    // Scores at three of the four steps (no score at step 8): that checkpoint is unmatched.
    await writeFile(scores, 'step,task,metric,value\n0,piqa,acc,0.50\n64,piqa,acc,0.55\n512,piqa,acc,0.61\n0,arc_easy,acc,0.25\n64,arc_easy,acc,0.31\n512,arc_easy,acc,0.30\n0,mmlu,acc,0.2\n');
    const out = join(dir, 'run');
    const steps = ['step0', 'step8', 'step64', 'step512'];
    const r = await runCli(['emergence', ...steps.map((s) => join(series, s)), '--samples', '0-1', '--benchmarks', scores, '--tasks', 'arc_easy,piqa', '--out', out, '--threads', '2']);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /E against acc \(.*scores\.csv\):\n/);
    t.regex(r.stdout, /no score at the step of: step8\n/);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    const E = new Map<number, number>(report.checkpoints.map((c: { step: number; E: number }) => [c.step, c.E]));
    const b = report.benchmarks;
    t.deepEqual([b.metric, b.tasks, b.unmatched], ['acc', ['arc_easy', 'piqa'], ['step8']]);
    const [arc, piqa] = b.correlations;
    t.deepEqual([arc.task, arc.n, piqa.task, piqa.n], ['arc_easy', 3, 'piqa', 3]);
    const pairE = [E.get(0)!, E.get(64)!, E.get(512)!];
    t.true(close(piqa.pearson.value, pearson(pairE, [0.5, 0.55, 0.61])!));
    t.true(close(arc.spearman.value, spearman(pairE, [0.25, 0.31, 0.3])!));
    const csv = (await readFile(join(out, 'correlations.csv'), 'utf8')).trim().split('\n');
    t.is(csv.length, 3);
    t.true(csv[1].startsWith(`arc_easy,,acc,3,${arc.pearson.value},${arc.pearson.p},`));
    const pairs = (await readFile(join(out, 'benchmarks.csv'), 'utf8')).trim().split('\n');
    t.deepEqual(pairs.slice(0, 2), ['checkpoint,step,task,shots,metric,score,E', `step0,0,arc_easy,,acc,0.25,${E.get(0)}`]);
    const stepsSpec = JSON.parse(await readFile(join(out, 'benchmarks.vl.json'), 'utf8'));
    t.is(stepsSpec.vconcat.length, 2);
    const [eLayer, scoreLayer] = stepsSpec.vconcat[0].layer;
    t.deepEqual(eLayer.data.values.map((v: { step: number }) => v.step), [0, 8, 64, 512]);
    t.deepEqual(scoreLayer.data.values.map((v: { step: number }) => v.step), [0, 64, 512]);
    t.is(eLayer.encoding.x.scale.type, 'symlog');
    t.is(scoreLayer.encoding.y.axis.orient, 'right');
    const scatter = JSON.parse(await readFile(join(out, 'benchmarks-scatter.vl.json'), 'utf8'));
    t.is(scatter.data.values.length, 6);
    t.deepEqual([scatter.spec.encoding.x.field, scatter.spec.encoding.y.field], ['E', 'score']);
    t.true(scatter.facet.sort[0].startsWith('arc_easy, n = 3|Pearson r = '));
    const html = await readFile(join(out, 'report.html'), 'utf8');
    t.true(html.includes('Correlation of E with each benchmark'));
    t.true(html.includes('data-figure="benchmarks-scatter"'));
  } finally {
    await cleanup();
  }
});

test('--tasks without --benchmarks, and a task not in the file, are usage errors before any analysis', async (t) => {
  const series = join(sharedDir, 'conformance', 'series', 'tiny-neox-f16');
  const a = await runCli(['emergence', join(series, 'step0'), join(series, 'step8'), '--tasks', 'piqa']);
  t.deepEqual([a.code, a.stderr], [2, 'neuromfa: --tasks picks benchmark tasks: give --benchmarks PATH too\n']);
  const b = await runCli(['emergence', join(series, 'step0'), join(series, 'step8'), '--benchmarks', join(pythia, 'five-shot'), '--tasks', 'nope']);
  t.is(b.code, 2);
  t.regex(b.stderr, /^neuromfa: --tasks: nope not in .*five-shot \(it has \d+ tasks, e\.g\. /);
});
