import test from 'ava';
import { join } from 'node:path';
import { emergenceCurve, hasPositiveF } from '../coordinator/analysis/emergence.js';
import { legendre } from '../coordinator/analysis/spectrum.js';
import { analyzeModel } from '../coordinator/analysis/model-analysis.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { conformanceDir, firstMismatch, readJson, within } from './helpers/shared.js';

const dir = join(conformanceDir, 'series', 'tiny-neox-f16');
const expected = readJson(join(dir, 'expected.json'));
const params = { threshold: 150, decimals: 0, minNeighbors: 10, q: Array.from({ length: 61 }, (_, i) => (i * 10 - 300) / 100) };

test('a real float16 training run: E at every step equals the reference pipeline', async (t) => {
  const backend = new InProcessBackend();
  const steps: any[] = expected.steps;
  const checkpoints = [];
  for (const step of steps) {
    const report = await analyzeModel(join(dir, `step${step.step}`), { samples: expected.samples, layerSample: expected.layerSample, params, shardsPerSample: 2, shardBytes: 1 << 20 }, backend);
    report.samples.forEach((r, i) => {
      const want = step.perSample[i];
      t.is(r.sample, want.sample);
      t.is(firstMismatch(r.tau, want.tau), -1, `tau of step ${step.step} sample ${want.sample}`);
      t.true(within(r.alpha0, want.alpha0), `alpha0 of step ${step.step} sample ${want.sample}`);
      t.true(within(r.width, want.width), `width of step ${step.step} sample ${want.sample}`);
      // The reference's fPositive is its literal f > 0; where that was only the q = 0 tie's
      // rounding noise (|f| < 1e-10) the exact answer is "not positive".
      const refF = legendre(params.q, want.tau).f;
      const noiseOnly = want.fPositive && Math.max(...refF) < 1e-10;
      t.is(hasPositiveF(r.f), want.fPositive && !noiseOnly, `fPositive of step ${step.step} sample ${want.sample}`);
    });
    checkpoints.push({ label: `step${step.step}`, model: dir, samples: report.samples });
  }
  const curve = emergenceCurve(checkpoints, 0);
  curve.forEach((c, i) => {
    t.true(within(c.alpha0.mean!, steps[i].alpha0), `mean alpha0 at step ${steps[i].step}`);
    t.true(within(c.width.mean!, steps[i].width), `mean width at step ${steps[i].step}`);
    t.true(within(c.E!, steps[i].E), `E at step ${steps[i].step}: ${c.E} vs ${steps[i].E}`);
  });
  t.is(curve[0].E, 0);
});

test('the series has one literal f > 0 that is only tie noise, and filter 1 keeps that sample', (t) => {
  const noisy = expected.steps.flatMap((st: any) => st.perSample.filter((s: any) => s.fPositive).map((s: any) => [st.step, s.sample, Math.max(...legendre(params.q, s.tau).f)]));
  t.deepEqual(noisy.map(([step, sample]: number[]) => [step, sample]), [[512, 1]]);
  t.true(noisy[0][2] > 0 && noisy[0][2] < 1e-16);
  t.false(hasPositiveF(legendre(params.q, expected.steps[3].perSample[1].tau).f));
});
