import test, { type ExecutionContext } from 'ava';
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../proto/errors.js';
import { openCheckpoint } from '../worker/io/checkpoint.js';
import { bf16BitsToNumber, decodeFloats, type DType } from '../worker/io/dtype.js';
import { requireFloatTensor, type TensorInfo } from '../worker/io/safetensors.js';
import { float64ToBF16Bits, writeConfigJson, writeSafetensors } from '../worker/io/safetensors-writer.js';
import { hfFixture, makeTmpDir } from './helpers/tmp.js';
import { withCheckpoint } from './helpers/with-checkpoint.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
test.before(async () => {
  tmp = await makeTmpDir();
});
test.after.always(async () => {
  await tmp.cleanup();
});


const rawBytes = (t: TensorInfo) => t.source.read(t.start, t.end);
const values = async (t: TensorInfo) => decodeFloats(requireFloatTensor(t), await rawBytes(t));

async function inputError(t: ExecutionContext, path: string, message: string) {
  const err = await t.throwsAsync(openCheckpoint(path), { instanceOf: InputError });
  t.is(err?.message, message);
}

// ---- the transformers-written fixtures --------------------------------------------------------

/*
 * gpt-neox-sharded holds the f32 weights rounded to bfloat16 and stored as F32 (the fixture
 * README says so), i.e. exactly the values of gpt-neox-bf16. So the sharded reader is checked
 * against both: equal to the BF16 file's values, and to the f32 file rounded to bf16.
 */
test('gpt-neox sharded: every tensor equals gpt-neox-bf16 and gpt-neox-f32 rounded to bf16', async (t) => {
  await withCheckpoint(hfFixture('gpt-neox-f32'), async (single) =>
    withCheckpoint(hfFixture('gpt-neox-bf16'), async (bf16) =>
      withCheckpoint(hfFixture('gpt-neox-sharded'), async (sharded) => {
        t.is(single.tensors.size, 28);
        t.deepEqual([...sharded.tensors.keys()].sort(), [...single.tensors.keys()].sort());
        t.is(sharded.files.length, 9);
        t.is(single.config.model_type, 'gpt_neox');
        for (const [name, a] of single.tensors) {
          const s = sharded.tensors.get(name)!;
          t.deepEqual([s.dtype, s.shape], ['F32', a.shape], name);
          const got = await values(s);
          t.deepEqual(got, await values(bf16.tensors.get(name)!), `${name} vs bf16`);
          t.deepEqual(got, Float64Array.from(await values(a), (x) => bf16BitsToNumber(float64ToBF16Bits(x))), `${name} vs f32`);
        }
      }),
    ),
  );
});

test('gpt-neox bf16 is the f32 weights rounded to nearest even', async (t) => {
  await withCheckpoint(hfFixture('gpt-neox-f32'), async (f32) =>
    withCheckpoint(hfFixture('gpt-neox-bf16'), async (bf16) => {
      t.is(bf16.tensors.size, f32.tensors.size);
      for (const [name, a] of f32.tensors) {
        const b = bf16.tensors.get(name)!;
        t.is(b.dtype, 'BF16');
        const full = await values(a);
        const raw = await rawBytes(b);
        const bits = new Uint16Array(raw.buffer, raw.byteOffset, raw.length / 2);
        t.deepEqual(bits, Uint16Array.from(full, float64ToBF16Bits), name);
      }
    }),
  );
});

const shapes: Array<[string, DType, string, number[]]> = [
  ['llama-gqa-f16', 'F16', 'model.layers.0.self_attn.k_proj.weight', [32, 64]],
  ['llama-gqa-f16', 'F16', 'model.layers.0.self_attn.q_proj.weight', [64, 64]],
  ['llama-gqa-f16', 'F16', 'model.layers.0.mlp.down_proj.weight', [64, 172]],
  ['mistral-f32', 'F32', 'model.layers.0.self_attn.v_proj.weight', [32, 64]],
  ['mistral-f32', 'F32', 'model.layers.1.mlp.gate_proj.weight', [160, 64]],
  ['qwen2-bf16', 'BF16', 'model.layers.0.self_attn.k_proj.bias', [32]],
  ['qwen2-bf16', 'BF16', 'model.layers.0.mlp.up_proj.weight', [160, 64]],
  ['gpt2-f32', 'F32', 'transformer.h.0.attn.c_attn.weight', [64, 192]],
  ['gpt2-f32', 'F32', 'transformer.h.1.mlp.c_proj.weight', [256, 64]],
  ['bert-f32', 'F32', 'encoder.layer.0.attention.self.query.weight', [64, 64]],
];

for (const fixture of new Set(shapes.map((s) => s[0]))) {
  test(`${fixture} opens with the expected tensor shapes, reading only headers`, async (t) => {
    const dir = hfFixture(fixture);
    await withCheckpoint(dir, async (c) => {
      t.is(c.files.length, 1);
      t.is(c.fileBytes, (await stat(join(dir, 'model.safetensors'))).size);
      const headerLen = Number((await readFile(join(dir, 'model.safetensors'))).readBigUInt64LE(0));
      t.is(c.bytesRead(), 8 + headerLen);
      t.is(typeof c.config.model_type, 'string');
      for (const [, dtype, name, shape] of shapes.filter((s) => s[0] === fixture)) {
        const info = c.tensors.get(name);
        t.truthy(info, name);
        t.deepEqual([info!.dtype, info!.shape], [dtype, shape], name);
        const v = await values(info!);
        t.is(v.length, shape.reduce((p, d) => p * d, 1));
        t.true(v.every(Number.isFinite), `${name} finite`);
      }
    });
  });
}

test('a .safetensors file path with config.json beside it', async (t) => {
  const file = join(hfFixture('gpt2-f32'), 'model.safetensors');
  await withCheckpoint(file, async (c) => {
    t.is(c.path, file);
    t.deepEqual(c.files, [file]);
    t.is(c.config.model_type, 'gpt2');
    t.deepEqual(c.tensors.get('transformer.h.0.attn.c_attn.weight')?.shape, [64, 192]);
  });
});

test('fileBytes sums the shards and bytesRead counts what was read', async (t) => {
  const dir = hfFixture('gpt-neox-sharded');
  await withCheckpoint(dir, async (c) => {
    let total = 0;
    for (const f of c.files) total += (await stat(f)).size;
    t.is(c.fileBytes, total);
    const before = c.bytesRead();
    const w = c.tensors.get('embed_out.weight')!;
    await rawBytes(w);
    t.is(c.bytesRead() - before, 128 * 64 * 4);
  });
});

test('a checkpoint written by our writer opens', async (t) => {
  const dir = join(tmp.dir, 'ours');
  await writeConfigJson(dir, { model_type: 'gpt_neox', hidden_size: 2 });
  await writeSafetensors(join(dir, 'model.safetensors'), [{ name: 'w', dtype: 'BF16', shape: [2, 2], data: new Float64Array([1, 2, 3, 4]) }]);
  await withCheckpoint(dir, async (c) => {
    t.deepEqual(c.config, { model_type: 'gpt_neox', hidden_size: 2 });
    t.deepEqual(await values(c.tensors.get('w')!), new Float64Array([1, 2, 3, 4]));
  });
});

// ---- errors ----------------------------------------------------------------------------

let seq = 0;
async function dirWith(files: Record<string, string | Uint8Array>): Promise<string> {
  const dir = join(tmp.dir, `c${seq++}`);
  await mkdir(dir);
  for (const [name, body] of Object.entries(files)) await writeFile(join(dir, name), body);
  return dir;
}
const CONFIG = '{"model_type": "llama"}';

test('missing path', async (t) => {
  const path = join(tmp.dir, 'does-not-exist');
  await inputError(t, path, `${path}: no such file or directory`);
});

test('directory without weights', async (t) => {
  const dir = await dirWith({ 'config.json': CONFIG });
  await inputError(t, dir, `${dir}: no model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json in this directory`);
});

test('config.json missing or invalid', async (t) => {
  const weights = await readFile(join(hfFixture('gpt2-f32'), 'model.safetensors'));
  const dir = await dirWith({ 'model.safetensors': weights });
  await inputError(t, dir, `${join(dir, 'config.json')}: missing (needed to choose the NIN layout)`);
  await inputError(t, join(dir, 'model.safetensors'), `${join(dir, 'config.json')}: missing (needed to choose the NIN layout)`);
  await writeFile(join(dir, 'config.json'), '{"model_type": ');
  const err = await t.throwsAsync(openCheckpoint(dir), { instanceOf: InputError });
  t.regex(err!.message, new RegExp(`^${join(dir, 'config.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON \\(.+\\)$`));
  t.false(err!.message.includes('\n'));
  await writeFile(join(dir, 'config.json'), '[]');
  await inputError(t, dir, `${join(dir, 'config.json')}: not a JSON object`);
});

test('a broken safetensors file surfaces as a format error with its path', async (t) => {
  const dir = await dirWith({ 'config.json': CONFIG, 'model.safetensors': 'not a model at all' });
  const err = await t.throwsAsync(openCheckpoint(dir), { instanceOf: InputError });
  t.is(err?.name, 'SafetensorsFormatError');
  t.true(err!.message.startsWith(`${join(dir, 'model.safetensors')}: not a safetensors file (header length `));
});

test('unsafe shard names in the index are rejected before opening anything', async (t) => {
  for (const shard of ['../model.safetensors', '/etc/passwd', 'sub/model.safetensors', 'a\\b.safetensors', 'C:\\x.safetensors', '..', '']) {
    const index = JSON.stringify({ weight_map: { 'w.weight': shard } });
    const dir = await dirWith({ 'config.json': CONFIG, 'model.safetensors.index.json': index });
    const path = join(dir, 'model.safetensors.index.json');
    await inputError(t, dir, `${path}: unsafe shard file name ${JSON.stringify(shard)} for tensor w.weight`);
  }
});

test('index problems: no weight_map, a missing shard, a tensor absent from its shard', async (t) => {
  const src = hfFixture('gpt-neox-sharded');
  const dir = await dirWith({ 'config.json': CONFIG, 'model.safetensors.index.json': '{"metadata": {}}' });
  const index = join(dir, 'model.safetensors.index.json');
  await inputError(t, dir, `${index}: no "weight_map" object`);

  await writeFile(index, JSON.stringify({ weight_map: { 'embed_out.weight': 'model-00009-of-00009.safetensors' } }));
  await inputError(t, dir, `${join(dir, 'model-00009-of-00009.safetensors')}: no such file`);

  await copyFile(join(src, 'model-00009-of-00009.safetensors'), join(dir, 'model-00009-of-00009.safetensors'));
  await withCheckpoint(dir, async (c) => t.deepEqual([...c.tensors.keys()], ['embed_out.weight']));

  await writeFile(index, JSON.stringify({ weight_map: { 'embed_out.weight': 'model-00009-of-00009.safetensors', 'gpt_neox.embed_in.weight': 'model-00009-of-00009.safetensors' } }));
  await inputError(t, dir, `${index}: tensor gpt_neox.embed_in.weight is mapped to model-00009-of-00009.safetensors, but model-00009-of-00009.safetensors does not contain it`);
});
