import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeModel, modelEdgeLists } from '../coordinator/analysis/model-analysis.js';
import { planRecord } from '../worker/nin/sample-plan.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { npyEdgeBytes } from '../worker/io/npy.js';
import { conformanceDir, firstMismatch, readJson, within } from './helpers/shared.js';

const dir = join(conformanceDir, 'gptneox');
const models = readdirSync(dir).sort();
const backend = new InProcessBackend();

test('three synthetic GPT-NeoX checkpoints: F32, F16, BF16', (t) => {
  t.deepEqual(models, ['neox-bf16-trained', 'neox-f16-trained', 'neox-f32-init']);
});

for (const name of models) {
  const expected = readJson(join(dir, name, 'expected.json'));
  const seeds: number[] = expected.seeds;
  const k: number = expected.layerSample;

  test(`${name}: plans and edge lists equal the reference's, byte for byte`, async (t) => {
    const { plans, edges } = await modelEdgeLists(join(dir, name), seeds, k);
    seeds.forEach((s, i) => {
      t.deepEqual(planRecord(plans[i]), expected.samples[String(s)].plan, `plan of sample ${s}`);
      const want = readFileSync(join(dir, name, `edges_sample${s}.npy`));
      const got = npyEdgeBytes(edges[i]);
      t.is(got.length, want.length, `edge list size of sample ${s}`);
      t.true(Buffer.from(got).equals(want), `edge list bytes of sample ${s}`);
    });
  });

  test(`${name}: analyze gives the reference's tau, alpha0 and width per sample`, async (t) => {
    const params = expected.samples[String(seeds[0])].expected.params;
    const report = await analyzeModel(join(dir, name), { samples: seeds, layerSample: k, params, shardsPerSample: 4, shardBytes: 1 << 20 }, backend);
    t.is(report.layout, 'gpt-neox');
    t.is(report.samples.length, seeds.length);
    report.samples.forEach((r, i) => {
      const want = expected.samples[String(seeds[i])].expected;
      t.is(r.sample, seeds[i]);
      t.is(r.nodesSelected, want.nodesSelected);
      t.deepEqual(r.radii, want.radii);
      t.is(firstMismatch(r.tau, want.tau), -1, `tau of sample ${seeds[i]}`);
      t.true(within(r.alpha0, want.alpha0), `alpha0 ${r.alpha0} vs ${want.alpha0}`);
      t.true(within(r.width, want.width), `width ${r.width} vs ${want.width}`);
    });
    t.true(report.stats.bytesRead < report.stats.fileBytes);
  });
}
