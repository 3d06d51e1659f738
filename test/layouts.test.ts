import test from 'ava';
import { join } from 'node:path';
import { mfaOfGroups } from '../coordinator/analysis/edge-analysis.js';
import { analyzeModel, modelEdgeLists, openModel } from '../coordinator/analysis/model-analysis.js';
import { edgesFromColumns, edgesFromRows } from '../worker/io/edge-list.js';
import { groupBySource } from '../worker/plan/edge-groups.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { decodeFloats } from '../worker/io/dtype.js';
import { readRows, requireFloatTensor } from '../worker/io/safetensors.js';
import { float64ToBF16Bits } from '../worker/io/safetensors-writer.js';
import { bf16BitsToNumber } from '../worker/io/dtype.js';
import { writeConfigJson, writeSafetensors } from '../worker/io/safetensors-writer.js';
import { firstMismatch, fixturesDir } from './helpers/shared.js';
import { makeTmpDir } from './helpers/tmp.js';

const backend = new InProcessBackend();
const params = { threshold: 150, decimals: 0, minNeighbors: 10, q: Array.from({ length: 61 }, (_, i) => (i * 10 - 300) / 100) };
const fixture = (name: string) => join(fixturesDir, name);

test('GPT-NeoX single-file BF16 and sharded checkpoints give identical NINs and spectra; F32 rounds onto them', async (t) => {
  // The sharded fixture stores the BF16-rounded weights as F32 (see the fixture note in the README).
  const [f32, bf16, sharded] = await Promise.all(['gpt-neox-f32', 'gpt-neox-bf16', 'gpt-neox-sharded'].map((m) => modelEdgeLists(fixture(m), [0, 1], 16)));
  for (let s = 0; s < 2; s++) {
    t.deepEqual(sharded.edges[s], bf16.edges[s]);
    const rounded = f32.edges[s].map((v, i) => (i % 3 === 2 ? bf16BitsToNumber(float64ToBF16Bits(v)) : v));
    t.deepEqual(rounded, bf16.edges[s]);
  }
  const opts = { samples: [0, 1], layerSample: 16, params, shardsPerSample: 2, shardBytes: 1 << 20 };
  const a = await analyzeModel(fixture('gpt-neox-bf16'), opts, backend);
  const b = await analyzeModel(fixture('gpt-neox-sharded'), opts, backend);
  // Same numbers; the bytes read differ (BF16 against F32 storage), and so do their hashes.
  const numbers = (r: typeof a) => r.samples.map(({ bytesSha256, ...rest }) => rest);
  t.deepEqual(numbers(b), numbers(a));
  t.not(b.samples[0].bytesSha256, a.samples[0].bytesSha256);
  t.is(a.layout, 'gpt-neox');
});

test('a sampled analysis reports its row reads, tensor by tensor, before it plans shards', async (t) => {
  const events: Array<{ type: string; tensors?: number; of?: number; bytes?: number }> = [];
  const r = await analyzeModel(fixture('gpt-neox-bf16'), { samples: [0, 1], layerSample: 16, params, shardsPerSample: 2, shardBytes: 1 << 20 }, backend, (e) => events.push(e));
  const reads = events.filter((e) => e.type === 'read');
  const of = reads[0].of!;
  t.true(of > 1);
  t.deepEqual(reads.map((e) => e.tensors), Array.from({ length: of }, (_, i) => i + 1));
  t.true(reads.every((e, i) => e.of === of && e.bytes! > (i ? reads[i - 1].bytes! : 0)), 'bytes grow with every tensor');
  t.true(reads[of - 1].bytes! <= r.stats.bytesRead, 'rows are part of what was read');
  t.true(events.findIndex((e) => e.type === 'planned') > events.lastIndexOf(reads[of - 1]));
});

for (const [name, layout, architecture] of [
  ['gpt2-f32', 'gpt2', 'GPT2LMHeadModel'],
  ['llama-gqa-f16', 'llama', 'LlamaForCausalLM'],
  ['mistral-f32', 'llama', 'MistralForCausalLM'],
  ['qwen2-bf16', 'llama', 'Qwen2ForCausalLM'],
  ['bert-f32', 'bert', 'BertModel'],
] as const) {
  test(`${name} analyses under the ${layout} layout, sampled and full (full equals its explicit edge list)`, async (t) => {
    const sampled = await analyzeModel(fixture(name), { samples: [0, 1, 2], layerSample: 16, params, shardsPerSample: 2, shardBytes: 1 << 20 }, backend);
    t.is(sampled.layout, layout);
    t.is(sampled.architecture, architecture);
    t.is(sampled.samples.length, 3);
    t.true(sampled.samples.every((s) => Number.isFinite(s.alpha0) && s.nodesSelected > 0));
    const full = await analyzeModel(fixture(name), { samples: 'full', layerSample: 16, params, shardsPerSample: 1, shardBytes: 8 << 10 }, backend);
    // The full NIN spelled out edge by edge: node = (matrix, input neuron), its out-edges = W[:, i].
    const { ckpt, layout: l } = await openModel(fixture(name), 16);
    const src: number[] = [];
    const w: number[] = [];
    let base = 0;
    for (const m of l.matrices) {
      for (const p of m.parts) {
        const info = ckpt.tensors.get(p.tensor)!;
        const [R, C] = info.shape;
        const v = decodeFloats(requireFloatTensor(info), await readRows(info, 0, R));
        for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) {
          src.push(base + (p.transposed ? r : c));
          w.push(v[r * C + c]);
        }
      }
      base += m.inputs;
    }
    await ckpt.close();
    const explicit = await mfaOfGroups(groupBySource(edgesFromColumns(Float64Array.from(src), new Float64Array(src.length), Float64Array.from(w))), params, backend, 3);
    t.is(full.samples[0].nodesSelected, explicit.spectrum.nodesSelected);
    t.is(firstMismatch(full.samples[0].tau, explicit.spectrum.tau, 1e-12), -1);
    t.is(full.stats.edges, w.filter((x) => x !== 0).length);
  });
}

/** A weight that names its position, so a transposed read can never pass for a straight one. */
const cell = (tensor: number, r: number, c: number) => (tensor * 4096 + r * 64 + c + 1) / 8192;

/** Edges emitted literally from the documented layout: (x0 + i, y0 + j, W[j][i]) for i in X, j in Y. */
function literal(stages: Array<{ X: ArrayLike<number>; Y: ArrayLike<number>; W: (j: number, i: number) => number; inputs: number; outputs: number }>, H: number): number[] {
  const out: number[] = [];
  let x0 = 0;
  let y0 = H;
  for (const s of stages) {
    for (const i of Array.from(s.X)) for (const j of Array.from(s.Y)) {
      const w = s.W(j, i);
      if (w !== 0) out.push(x0 + i, y0 + j, w);
    }
    x0 += s.inputs;
    y0 += s.outputs;
  }
  return out;
}

test('GPT-2 Conv1D weights are read transposed: a non-symmetric checkpoint gives the known edges', async (t) => {
  const { dir, cleanup } = await makeTmpDir();
  try {
    const H = 4;
    const shapes: Array<[string, number, number]> = [
      ['transformer.h.0.attn.c_attn.weight', H, 3 * H],
      ['transformer.h.0.attn.c_proj.weight', H, H],
      ['transformer.h.0.mlp.c_fc.weight', H, 4 * H],
      ['transformer.h.0.mlp.c_proj.weight', 4 * H, H],
    ];
    await writeSafetensors(
      join(dir, 'model.safetensors'),
      shapes.map(([name, r, c], k) => ({ name, dtype: 'F32' as const, shape: [r, c], data: Float32Array.from({ length: r * c }, (_, x) => cell(k, Math.floor(x / c), x % c)) })),
    );
    await writeConfigJson(dir, { architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_embd: H, n_layer: 1, n_head: 2 });
    const { plans, edges, layout } = await modelEdgeLists(dir, [3], 2);
    t.is(layout.name, 'gpt2');
    const b = plans[0].blocks[0];
    const conv = (k: number) => (j: number, i: number) => cell(k, i, j); // W[j][i] = C[i][j]
    const expected = literal(
      [
        { X: b.get('nums1')!, Y: b.get('nums2')!, W: conv(0), inputs: H, outputs: 3 * H },
        { X: b.get('nums2')!, Y: b.get('nums3')!, W: (j, i) => (i < H ? (i === j ? 1 : 0) : 1), inputs: 3 * H, outputs: H },
        { X: b.get('nums3')!, Y: b.get('nums4')!, W: conv(1), inputs: H, outputs: H },
        { X: b.get('nums4')!, Y: b.get('nums5')!, W: conv(2), inputs: H, outputs: 4 * H },
        { X: b.get('nums5')!, Y: plans[0].final, W: conv(3), inputs: 4 * H, outputs: H },
      ],
      H,
    );
    t.deepEqual(Array.from(edges[0]), expected);
    t.deepEqual(Array.from(b.get('nums2')!), [...b.get('nums3')!, ...Array.from(b.get('nums3')!, (v) => v + H), ...Array.from(b.get('nums3')!, (v) => v + 2 * H)]);
  } finally {
    await cleanup();
  }
});

test('Llama with grouped-query attention: q/k/v stacked, gate/up paired, the known edges', async (t) => {
  const { dir, cleanup } = await makeTmpDir();
  try {
    const H = 8;
    const heads = 4;
    const kvHeads = 2;
    const hd = 2;
    const I = 12;
    const qDim = heads * hd;
    const kvDim = kvHeads * hd;
    const shapes: Array<[string, number, number]> = [
      ['model.layers.0.self_attn.q_proj.weight', qDim, H],
      ['model.layers.0.self_attn.k_proj.weight', kvDim, H],
      ['model.layers.0.self_attn.v_proj.weight', kvDim, H],
      ['model.layers.0.self_attn.o_proj.weight', H, qDim],
      ['model.layers.0.mlp.gate_proj.weight', I, H],
      ['model.layers.0.mlp.up_proj.weight', I, H],
      ['model.layers.0.mlp.down_proj.weight', H, I],
    ];
    await writeSafetensors(
      join(dir, 'model.safetensors'),
      shapes.map(([name, r, c], k) => ({ name, dtype: 'F32' as const, shape: [r, c], data: Float32Array.from({ length: r * c }, (_, x) => cell(k, Math.floor(x / c), x % c)) })),
    );
    await writeConfigJson(dir, {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_size: H,
      num_hidden_layers: 1,
      num_attention_heads: heads,
      num_key_value_heads: kvHeads,
      head_dim: hd,
      intermediate_size: I,
    });
    const { plans, edges, layout } = await modelEdgeLists(dir, [5], 2);
    t.is(layout.name, 'llama');
    const b = plans[0].blocks[0];
    const t_ = Array.from(b.get('nums3')!);
    const u = Array.from(b.get('u')!);
    t.deepEqual(Array.from(b.get('nums2')!), [...t_, ...u.map((v) => v + qDim), ...u.map((v) => v + qDim + kvDim)]);
    const lin = (k: number) => (j: number, i: number) => cell(k, j, i); // Linear W[j][i]
    const qkv = (j: number, i: number) => (j < qDim ? cell(0, j, i) : j < qDim + kvDim ? cell(1, j - qDim, i) : cell(2, j - qDim - kvDim, i));
    const gateUp = (j: number, i: number) => (j < I ? cell(4, j, i) : cell(5, j - I, i));
    const expected = literal(
      [
        { X: b.get('nums1')!, Y: b.get('nums2')!, W: qkv, inputs: H, outputs: qDim + 2 * kvDim },
        { X: b.get('nums2')!, Y: b.get('nums3')!, W: (j, i) => (i < qDim ? (i === j ? 1 : 0) : 1), inputs: qDim + 2 * kvDim, outputs: qDim },
        { X: b.get('nums3')!, Y: b.get('nums4')!, W: lin(3), inputs: qDim, outputs: H },
        { X: b.get('nums4')!, Y: b.get('nums5')!, W: gateUp, inputs: H, outputs: 2 * I },
        { X: b.get('nums5')!, Y: b.get('mlp')!, W: (j, i) => (i % I === j ? 1 : 0), inputs: 2 * I, outputs: I },
        { X: b.get('mlp')!, Y: plans[0].final, W: lin(6), inputs: I, outputs: H },
      ],
      H,
    );
    t.deepEqual(Array.from(edges[0]), expected);
  } finally {
    await cleanup();
  }
});

test('edgesFromRows views interleaved rows with stride 3', (t) => {
  const c = edgesFromRows(Float64Array.of(1, 2, 0.5, 3, 4, -0.25));
  const col = (a: Float64Array) => Array.from({ length: c.count }, (_, e) => a[e * c.stride]);
  t.deepEqual([c.count, col(c.src), col(c.dst), col(c.w)], [2, [1, 3], [2, 4], [0.5, -0.25]]);
});
