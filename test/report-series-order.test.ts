import test from 'ava';
import { join } from 'node:path';
import { checkSameShape, orderSeries, stepOf } from '../coordinator/analysis/series-order.js';
import { formatEta, progressBar, ProgressState } from '../coordinator/cli/progress.js';
import type { RunEvent } from '../coordinator/run/run-shards.js';
import { runCli } from './helpers/run-cli.js';
import { conformanceDir, readJson, repoRoot } from './helpers/shared.js';

/** Issue 11: a local series in training order and of one model; progress that plans the series; --version and --help. */

const series = join(conformanceDir, 'series', 'tiny-neox-f16');
const glob = ['step0', 'step512', 'step64', 'step8']; // what `step*` expands to

test('an out-of-order local series is refused with one line naming the expected order (exit 2)', async (t) => {
  const r = await runCli(['emergence', ...glob.map((s) => join(series, s)), '--samples', '0']);
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.is(
    r.stderr,
    'neuromfa: checkpoints are not in training order (by the step in their labels): got step0, step512, step64, step8; expected step0, step8, step64, step512 (give them in that order, or add --sort)\n',
  );
});

test('--sort analyses them in step order', async (t) => {
  const r = await runCli(['emergence', ...glob.map((s) => join(series, s)), '--samples', '0', '--sort', '--threads', '1', '--json']);
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.deepEqual(
    j.checkpoints.map((c: any) => [c.label, c.step]),
    [
      ['step0', 0],
      ['step8', 8],
      ['step64', 64],
      ['step512', 512],
    ],
  );
  t.is(j.checkpoints[0].E, 0);
});

test('a series mixing hidden sizes or architectures is refused (exit 3) unless --allow-mixed', async (t) => {
  const other = join(conformanceDir, 'gptneox', 'neox-f16-trained');
  const hidden = await runCli(['emergence', join(series, 'step0'), other, '--labels', 'step0,step100', '--samples', '0']);
  t.is(hidden.code, 3);
  t.is(
    hidden.stderr,
    'neuromfa: the series mixes models: step0 is GPTNeoXForCausalLM with hidden size 64, step100 is GPTNeoXForCausalLM with hidden size 128 (add --allow-mixed to compare them anyway)\n',
  );
  const llama = join(repoRoot, '..', 'shared', 'fixtures', 'hf', 'llama-gqa-f16');
  const arch = await runCli(['emergence', join(series, 'step0'), llama, '--labels', 'a,b', '--samples', '0']);
  t.is(arch.code, 3);
  t.regex(arch.stderr, /^neuromfa: the series mixes models: a is GPTNeoXForCausalLM with hidden size 64, b is LlamaForCausalLM with hidden size \d+ \(add --allow-mixed/);
  const allowed = await runCli(['emergence', join(series, 'step0'), other, '--labels', 'step0,step100', '--samples', '0', '--allow-mixed', '--threads', '1', '--json']);
  t.is(allowed.code, 0, allowed.stderr);
  t.is(JSON.parse(allowed.stdout).checkpoints.length, 2);
});

test('stepOf takes the last number of a label; orderSeries keeps labels without numbers as given', (t) => {
  t.is(stepOf('step1000'), 1000);
  t.is(stepOf('pythia-160m-step64'), 64);
  t.is(stepOf('main'), undefined);
  const m = (l: string) => ({ label: l });
  t.deepEqual(orderSeries(['init', 'late', 'mid'].map(m), false).map((x) => x.label), ['init', 'late', 'mid']);
  t.deepEqual(orderSeries(['step10', 'step2'].map(m), true).map((x) => x.label), ['step2', 'step10']);
  t.throws(() => orderSeries(['a-step5', 'b-step5'].map(m), true), { message: 'a-step5 and b-step5 both name step 5: give each checkpoint its own --labels' });
  t.notThrows(() => checkSameShape([{ label: 'a', architecture: 'X', hidden: 8 }, { label: 'b', architecture: 'Y', hidden: 8 }], true));
});

const done = (edges = 100): RunEvent => ({ type: 'shard-done', id: 0, result: { edges } as never, resumed: false });

test('progress plans a series: the total counts every checkpoint from the first plan, corrected as each plans', (t) => {
  let clock = 0;
  const s = new ProgressState(() => clock);
  t.is(s.total, undefined, 'no total (and no bar) before anything is planned');
  s.apply({ type: 'checkpoint', label: 'step0', index: 0, of: 4 });
  s.apply({ type: 'read', tensors: 3, of: 8, bytes: 1e6 });
  t.is(s.total, undefined);
  t.is(s.phase(), ' | reading step0: 3/8 tensors, 1.0 MB of rows');
  s.apply({ type: 'read', tensors: 8, of: 8, bytes: 2e6 });
  t.is(s.phase(), '', 'a finished read is no longer shown');
  s.apply({ type: 'planned', shards: 6, edges: 600 });
  t.is(s.total, 24, '4 checkpoints of 6 shards');
  // The series reads step8 while step0 computes.
  s.apply({ type: 'checkpoint', label: 'step8', index: 1, of: 4 });
  t.is(s.where(), ' step8 (2/4)');
  for (let i = 0; i < 6; i++) {
    clock += 1000;
    s.apply(done());
  }
  t.is(s.total, 24, 'the next checkpoint counts as estimated until it plans');
  s.apply({ type: 'planned', shards: 8, edges: 800 });
  t.is(s.total, 6 + 8 + 8 + 8);
  t.is(s.done, 6);
  t.is(s.eta(), 24 * 1, '5 computed shards in 5 s after the first: 1 s each, 24 left');
  t.is(formatEta(undefined), '-');
  t.is(formatEta(3725), '1h02m');
  t.is(formatEta(185), '3m05s');
});

test('progress of a sampled series: a checkpoint that plans sample by sample counts as one plan', (t) => {
  const s = new ProgressState(() => 0);
  s.apply({ type: 'checkpoint', label: 'step0', index: 0, of: 3 });
  s.apply({ type: 'planned', shards: 2, edges: 200 });
  t.is(s.total, 6, 'three checkpoints estimated from the first sample');
  s.apply({ type: 'planned', shards: 2, edges: 200, adds: true });
  s.apply({ type: 'planned', shards: 2, edges: 200, adds: true });
  t.is(s.total, 18, 'three checkpoints of three samples of two shards');
  s.apply({ type: 'checkpoint', label: 'step8', index: 1, of: 3 });
  s.apply({ type: 'planned', shards: 2, edges: 200 });
  t.is(s.total, 6 + 2 + 6, 'the growing plan does not lower the estimate of the checkpoints still to come');
  s.apply({ type: 'planned', shards: 2, edges: 200, adds: true });
  s.apply({ type: 'planned', shards: 2, edges: 200, adds: true });
  t.is(s.total, 18);
});

test('--progress lines: one per checkpoint and at most one per 10 s, then a summary; no control characters', (t) => {
  let clock = 0;
  const lines: string[] = [];
  const p = progressBar('lines', 'emergence', undefined, (x) => lines.push(x), () => clock);
  p.listener({ type: 'checkpoint', label: 'step0', index: 0, of: 2 });
  p.listener({ type: 'planned', shards: 2, edges: 200 });
  clock = 1000;
  p.listener(done());
  clock = 2000;
  p.listener(done());
  p.listener({ type: 'checkpoint', label: 'step8', index: 1, of: 2 });
  p.listener({ type: 'planned', shards: 2, edges: 200 });
  clock = 13_000;
  p.listener(done());
  p.listener(done());
  p.stop();
  t.deepEqual(lines, [
    'neuromfa: emergence step0 (1/2): 0/4 shards, 0 edges/s, ETA -\n',
    'neuromfa: emergence step8 (2/2): 2/4 shards, 100 edges/s, ETA 2s\n',
    'neuromfa: emergence step8 (2/2): 3/4 shards, 23 edges/s, ETA 6s\n',
    'neuromfa: emergence: 4 shards done in 13.0 s\n',
  ]);
  const off: string[] = [];
  const quiet = progressBar('off', 'analyze', undefined, (x) => off.push(x));
  quiet.listener({ type: 'planned', shards: 1, edges: 1 });
  quiet.listener(done());
  quiet.stop();
  t.deepEqual(off, []);
});

test('neuromfa --version, and --help lists the environment variables and exit codes', async (t) => {
  const v = await runCli(['--version']);
  t.is(v.code, 0);
  t.is(v.stdout, `${readJson(join(repoRoot, 'package.json')).version}\n`);
  const h = await runCli(['--help']);
  t.is(h.code, 0);
  for (const name of ['HF_ENDPOINT', 'HF_TOKEN', 'NEUROMFA_CACHE', 'HF_HUB_CACHE', 'NEUROMFA_HUB_CONCURRENCY', 'NEUROMFA_HUB_GAP_KB', 'NEUROMFA_NATS_PASS', 'NEUROMFA_NATS_TOKEN']) {
    t.regex(h.stdout, new RegExp(`^\\s+${name}\\b`, 'm'), name);
  }
  for (const code of [0, 1, 2, 3, 4, 5]) t.regex(h.stdout, new RegExp(`^\\s+${code}\\s+\\w`, 'm'), `exit code ${code}`);
  const e = await runCli(['emergence', '--help']);
  for (const f of ['--sort', '--allow-mixed', '--progress']) t.regex(e.stdout, new RegExp(`\\s${f}\\b`), f);
});

test('progress of a series fanned out over workers: checkpoints done and the bytes each worker read', (t) => {
  const s = new ProgressState(() => 0);
  s.apply({ type: 'planned', shards: 3, edges: 0, checkpoints: [{ label: 'step0', shards: [0] }, { label: 'step8', shards: [1, 2] }] });
  t.is(s.total, 3);
  t.is(s.where(), ' checkpoints 0/2 done');
  const sampled = (id: number, worker: string, bytesRead: number): RunEvent => ({
    type: 'shard-done',
    id,
    resumed: false,
    result: { id, measure: 'sampled', backend: 'f64', layout: 'gpt-neox', architecture: 'GPTNeoXForCausalLM', blockCount: 2, worker, requests: 9, samples: [], nodes: 0, edges: 10, skippedNonFinite: 0, bytesRead, seconds: 1 },
  });
  s.apply(sampled(1, 'w1:7', 2e6));
  t.is(s.where(), ' checkpoints 0/2 done', 'step8 has a shard left');
  s.apply(sampled(0, 'w2:9', 5e6));
  s.apply(sampled(2, 'w1:7', 1e6));
  t.is(s.where(), ' checkpoints 2/2 done');
  t.is(s.phase(), ' | read by workers: w2:9 5.0 MB, w1:7 3.0 MB');
});
