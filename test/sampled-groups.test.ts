import test from 'ava';
import { join } from 'node:path';
import { analyzeModel } from '../coordinator/analysis/model-analysis.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { edgesFromRows } from '../worker/io/edge-list.js';
import { drawPlan } from '../worker/nin/sample-plan.js';
import { sampledEdges, sampledGroups } from '../worker/nin/sampled-edges.js';
import { openModel, readSampledRows } from '../worker/nin/sampled-read.js';
import { groupBySource } from '../worker/plan/edge-groups.js';
import { fixturesDir } from './helpers/shared.js';

const fixture = (name: string) => join(fixturesDir, name);
const params = { threshold: 150, decimals: 0, minNeighbors: 10, q: Array.from({ length: 61 }, (_, i) => (i * 10 - 300) / 100) };

// Every layout (Linear and Conv1D parts, fused and split projections, GQA, gated MLPs) and storage (safetensors, torch zip).
const models = ['gpt-neox-bf16', 'gpt2-f32', 'llama-gqa-f16', 'mistral-f32', 'qwen2-bf16', 'bert-f32', 'gpt-neox-bin'];

for (const name of models) {
  test(`sampled NINs built grouped equal the reference edge list grouped by source: ${name}`, async (t) => {
    const { ckpt, layout } = await openModel(fixture(name), 8);
    try {
      const plans = [0, 3].map((s) => drawPlan(layout, s));
      const cells = await readSampledRows(ckpt, layout, plans);
      for (const plan of plans) {
        const want = groupBySource(edgesFromRows(sampledEdges(layout, plan, cells)));
        const got = sampledGroups(layout, plan, cells);
        t.deepEqual(Array.from(got.nodes), Array.from(want.nodes));
        t.deepEqual(Array.from(got.offsets), Array.from(want.offsets));
        t.deepEqual(Array.from(got.weights), Array.from(want.weights));
        t.is(got.stride, 1);
        t.true(got.weights.buffer instanceof SharedArrayBuffer, 'pool threads read the weights without a copy');
      }
    } finally {
      await ckpt.close();
    }
  });
}

test('a sample\'s weight digest is pinned: series integrity and resume journals compare it across builds', async (t) => {
  const pinned: Record<string, string[]> = {
    'gpt-neox-bf16': ['f4cc6afdcaf794bf18e74831f9b5f4628ac4270013563de0ed69a1f7eb730391', 'd6f175b9ed380995cb0fb76f8c7b2b54a3467216667fc51fd472eee317d9a321'],
    'gpt2-f32': ['7966235786460004603c62cd42a4082f66601d1078747f34c045df667971cf54', '26a71c74833bf8c76b433bf53acb59cf3227783fec39ea1f4b3f5902a3215ef6'],
    'llama-gqa-f16': ['2ad29c2c9c6b3a106d1f93dadcaf9456bf747dcf4c0ec6beb842bbf187774a69', 'c0040b4d230c045d1b166f5429145aed40084deefe4e8d94e5a3e3b1c6563cc9'],
    'gpt-neox-bin': ['f34b76a9bbda23d17b1105a564346b9f1a687cb37d2d5cc20bd36e35816a4538', '95da2b48a9e2b669c06aec1884b91a47ebe49cadd37b6098cdb037fcec427149'],
  };
  for (const [name, digests] of Object.entries(pinned)) {
    const r = await analyzeModel(fixture(name), { samples: [0, 3], layerSample: 8, params, shardsPerSample: 2, shardBytes: 1 << 20 }, new InProcessBackend());
    t.deepEqual(
      r.samples.map((s) => s.bytesSha256),
      digests,
      name,
    );
  }
});

test('a sample plan is drawn once per layout shape and index: the checkpoints of a series share it', async (t) => {
  const opened = await Promise.all([openModel(fixture('gpt-neox-bf16'), 8), openModel(fixture('gpt-neox-bf16'), 8), openModel(fixture('gpt-neox-bf16'), 4)]);
  try {
    const [a, b, fewer] = opened.map((o) => o.layout);
    t.not(a, b);
    t.is(drawPlan(b, 2), drawPlan(a, 2));
    t.not(drawPlan(a, 3), drawPlan(a, 2));
    t.is(drawPlan(a, 3).sample, 3);
    t.is(drawPlan(fewer, 2).final.length, 4);
    t.is(drawPlan(a, 2).final.length, 8);
  } finally {
    await Promise.all(opened.map((o) => o.ckpt.close()));
  }
});
