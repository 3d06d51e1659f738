import test from 'ava';
import { join } from 'node:path';
import { runSeries } from '../coordinator/analysis/emergence-series.js';
import type { RunEvent } from '../coordinator/run/run-shards.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { conformanceDir, firstMismatch, readJson } from './helpers/shared.js';

const dir = join(conformanceDir, 'series', 'tiny-neox-f16');
const expected = readJson(join(dir, 'expected.json'));
const params = { threshold: 150, decimals: 0, minNeighbors: 10, q: Array.from({ length: 61 }, (_, i) => (i * 10 - 300) / 100) };

test('a series reads the next checkpoint while the current one computes, never two ahead; numbers unchanged', async (t) => {
  const steps: Array<{ step: number; perSample: Array<{ tau: number[] }> }> = expected.steps;
  const members = steps.map((s) => ({ label: `step${s.step}`, model: join(dir, `step${s.step}`) }));
  const events: string[] = [];
  let plans = 0;
  const listener = (e: RunEvent) => {
    if (e.type === 'checkpoint') events.push(`open ${e.index}`);
    // Each sample plans its shards as it is built: a checkpoint's first plan starts its compute.
    if (e.type === 'planned' && plans++ % expected.samples.length === 0) events.push('compute');
  };
  const opts = { samples: expected.samples, layerSample: expected.layerSample, params, shardsPerSample: 2, shardBytes: 1 << 20 };
  const r = await runSeries(members, opts, new InProcessBackend(), listener, { keepDuplicates: true });
  // Checkpoint k+1 is opened (its rows read) before k's shards are planned; k+2 only after k computed.
  const want = ['open 0', ...steps.flatMap((_, k) => (k + 1 < steps.length ? [`open ${k + 1}`, 'compute'] : ['compute']))];
  t.deepEqual(events, want);
  r.members.forEach((m, k) => m.samples.forEach((s, i) => t.is(firstMismatch(s.tau, steps[k].perSample[i].tau), -1, `tau of ${m.label} sample ${s.sample}`)));
});

test('a checkpoint that fails to open while the previous one computes fails the series with its own error', async (t) => {
  const members = [
    { label: 'step0', model: join(dir, 'step0') },
    { label: 'broken', model: join(dir, 'no-such-step') },
  ];
  const opts = { samples: [0], layerSample: expected.layerSample, params, shardsPerSample: 2, shardBytes: 1 << 20 };
  await t.throwsAsync(runSeries(members, opts, new InProcessBackend(), undefined, { keepDuplicates: true }), { message: /no-such-step/ });
});
