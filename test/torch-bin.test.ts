import test, { type ExecutionContext } from 'ava';
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { analyzeModel } from '../coordinator/analysis/model-analysis.js';
import { InputError } from '../proto/errors.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { MemoryByteSource } from '../worker/io/byte-source.js';
import { bf16BitsToNumber, decodeFloats } from '../worker/io/dtype.js';
import { unpickle } from '../worker/io/pickle.js';
import { isContiguous, readRowList, readRows, requireFloatTensor, type TensorInfo } from '../worker/io/safetensors.js';
import { float64ToBF16Bits, float64ToF16Bits } from '../worker/io/safetensors-writer.js';
import { readTorchBin } from '../worker/io/torch-bin.js';
import { readZipDirectory } from '../worker/io/zip.js';
import { hfFixture, makeTmpDir } from './helpers/tmp.js';
import { withCheckpoint } from './helpers/with-checkpoint.js';
import { f32Bytes, P, statePickle, torchZip } from './helpers/torch-zip.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
test.before(async () => {
  tmp = await makeTmpDir();
});
test.after.always(async () => {
  await tmp.cleanup();
});


const values = async (t: TensorInfo) => decodeFloats(requireFloatTensor(t), await readRows(t, 0, t.shape[0]));
/** Every element of any-rank tensor, row-major (1-D and 0-D tensors read as one block). */
const allValues = async (t: TensorInfo) => decodeFloats(requireFloatTensor(t), await t.source.read(t.start, t.end));
/** The .bin fixtures were saved from the model object, whose output head is `lm_head`. */
const safetensorsName = (n: string) => (n === 'lm_head.weight' ? 'embed_out.weight' : n);

// ---- the transformers-written fixtures --------------------------------------------------------

test('gpt-neox-bin: every tensor equals gpt-neox-sharded exactly, and gpt-neox-f32 rounded to bf16', async (t) => {
  await withCheckpoint(hfFixture('gpt-neox-bin'), async (bin) =>
    withCheckpoint(hfFixture('gpt-neox-sharded'), async (sharded) =>
      withCheckpoint(hfFixture('gpt-neox-f32'), async (f32) => {
        t.is(bin.tensors.size, 28);
        t.deepEqual([...bin.tensors.keys()].map(safetensorsName).sort(), [...sharded.tensors.keys()].sort());
        t.deepEqual(bin.files, [join(hfFixture('gpt-neox-bin'), 'pytorch_model.bin')]);
        for (const [name, b] of bin.tensors) {
          const s = sharded.tensors.get(safetensorsName(name))!;
          t.deepEqual([b.dtype, b.shape, isContiguous(b)], ['F32', s.shape, true], name);
          const got = await allValues(b);
          t.deepEqual(got, await allValues(s), `${name} vs sharded`);
          const full = await allValues(f32.tensors.get(safetensorsName(name))!);
          t.deepEqual(got, Float64Array.from(full, (x) => bf16BitsToNumber(float64ToBF16Bits(x))), `${name} vs f32`);
        }
      }),
    ),
  );
});

/*
 * Checked with numpy on the fixture files: the F16 shards are the .bin weights (themselves
 * bf16-rounded values) rounded to float16 — bit for bit for all 28 tensors — and NOT the
 * f32 weights rounded to float16 once (10 tensors differ: double rounding).
 */
test('gpt-neox-bin-sharded-f16: three .bin shards, every tensor the gpt-neox-bin weights rounded to float16', async (t) => {
  await withCheckpoint(hfFixture('gpt-neox-bin-sharded-f16'), async (f16) =>
    withCheckpoint(hfFixture('gpt-neox-bin'), async (bin) =>
      withCheckpoint(hfFixture('gpt-neox-f32'), async (f32) => {
        t.is(f16.files.length, 3);
        t.is(f16.tensors.size, 28);
        let differFromSingleRounding = 0;
        for (const [name, h] of f16.tensors) {
          t.is(h.dtype, 'F16', name);
          const raw = await h.source.read(h.start, h.end);
          const bits = new Uint16Array(raw.slice().buffer);
          t.deepEqual(bits, Uint16Array.from(await allValues(bin.tensors.get(name)!), float64ToF16Bits), name);
          const once = Uint16Array.from(await allValues(f32.tensors.get(safetensorsName(name))!), float64ToF16Bits);
          if (once.some((b, i) => b !== bits[i])) differFromSingleRounding++;
        }
        t.is(differFromSingleRounding, 10);
      }),
    ),
  );
});

test('a .bin file path and a .bin.index.json path open like their folders', async (t) => {
  const file = join(hfFixture('gpt-neox-bin'), 'pytorch_model.bin');
  await withCheckpoint(file, async (c) => {
    t.is(c.path, file);
    t.deepEqual(c.files, [file]);
    t.is(c.config.model_type, 'gpt_neox');
  });
  const index = join(hfFixture('gpt-neox-bin-sharded-f16'), 'pytorch_model.bin.index.json');
  await withCheckpoint(index, async (c) => {
    t.is(c.files.length, 3);
    t.deepEqual(c.tensors.get('gpt_neox.layers.1.mlp.dense_4h_to_h.weight')?.shape, [64, 256]);
  });
});

test('a folder with both formats prefers safetensors; .bin is chosen only without one', async (t) => {
  const dir = join(tmp.dir, 'both');
  await mkdir(dir);
  for (const f of ['config.json', 'pytorch_model.bin']) await symlink(join(hfFixture('gpt-neox-bin'), f), join(dir, f));
  await withCheckpoint(dir, async (c) => t.deepEqual(c.files, [join(dir, 'pytorch_model.bin')]));
  await symlink(join(hfFixture('gpt-neox-f32'), 'model.safetensors'), join(dir, 'model.safetensors'));
  await withCheckpoint(dir, async (c) => t.deepEqual(c.files, [join(dir, 'model.safetensors')]));
});

test('analyze: the .bin checkpoint gives the spectra of the same weights in safetensors, sampled and full', async (t) => {
  const backend = new InProcessBackend();
  const params = { threshold: 150, decimals: 0, minNeighbors: 10, q: [-2, -1, 0, 1, 2] };
  for (const samples of [[0, 1], 'full'] as const) {
    const opts = { samples: samples === 'full' ? ('full' as const) : [...samples], layerSample: 16, params, shardsPerSample: 2, shardBytes: 1 << 14 };
    const a = await analyzeModel(hfFixture('gpt-neox-bin'), opts, backend);
    const b = await analyzeModel(hfFixture('gpt-neox-sharded'), opts, backend);
    t.deepEqual(a.samples, b.samples, String(samples));
    t.is(a.stats.edges, b.stats.edges);
  }
});

// ---- crafted archives (test/helpers/torch-zip.ts) -----------------------------------------------

const mem = (bytes: Uint8Array, name = 'crafted.bin') => new MemoryByteSource(name, bytes);

async function refused(t: ExecutionContext, bytes: Uint8Array, message: string | RegExp) {
  const err = await t.throwsAsync(readTorchBin(mem(bytes)), { instanceOf: InputError });
  if (typeof message === 'string') t.is(err?.message, message);
  else t.regex(err!.message, message);
  t.false(err!.message.includes('\n'));
}

// W [3, 4] stored row-major in storage '0'; its transpose W^T [4, 3] is a view with strides (1, 4).
const W = Array.from({ length: 12 }, (_, i) => (i + 1) * 0.5 - 3);
const wAt = (r: number, c: number) => W[r * 4 + c];

test('a transposed (non-contiguous) tensor reads as its logical rows', async (t) => {
  const pickle = statePickle([
    { name: 'w', key: '0', storage: 'FloatStorage', numel: 12, offset: 0, shape: [3, 4], strides: [4, 1] },
    { name: 'wt', key: '0', storage: 'FloatStorage', numel: 12, offset: 0, shape: [4, 3], strides: [1, 4] },
  ]);
  const tensors = await readTorchBin(mem(torchZip(pickle, { '0': f32Bytes(W) })));
  const w = tensors.get('w')!;
  const wt = tensors.get('wt')!;
  t.true(isContiguous(w));
  t.is(w.strides, undefined);
  t.false(isContiguous(wt));
  t.deepEqual(wt.strides, [1, 4]);
  t.deepEqual(decodeFloats('F32', await readRows(wt, 0, 4)), Float64Array.from({ length: 12 }, (_, i) => wAt(i % 3, Math.floor(i / 3))));
  const rows = await readRowList(wt, [3, 1, 3]);
  t.deepEqual([...rows.keys()].sort(), [1, 3]);
  for (const r of [1, 3]) t.deepEqual(decodeFloats('F32', rows.get(r)!), Float64Array.from([0, 1, 2], (c) => wAt(c, r)));
  // Rows of a transpose overlap in the file: the covering range is read once, not per row.
  const src = wt.source;
  const before = src.bytesRead;
  await readRowList(wt, [0, 1, 2, 3]);
  t.is(src.bytesRead - before, 12 * 4);
});

test('a sliced view with a storage offset and a row stride reads its own rows', async (t) => {
  // Rows 1..2, columns 1..2 of W: offset 5, shape [2, 2], strides (4, 1).
  const pickle = statePickle([{ name: 'v', key: '7', storage: 'FloatStorage', numel: 12, offset: 5, shape: [2, 2], strides: [4, 1] }]);
  const v = (await readTorchBin(mem(torchZip(pickle, { '7': f32Bytes(W) })))).get('v')!;
  t.false(isContiguous(v));
  const rows = await readRowList(v, [0, 1]);
  t.deepEqual(decodeFloats('F32', rows.get(0)!), Float64Array.from([wAt(1, 1), wAt(1, 2)]));
  t.deepEqual(decodeFloats('F32', rows.get(1)!), Float64Array.from([wAt(2, 1), wAt(2, 2)]));
  t.deepEqual(decodeFloats('F32', await readRows(v, 1, 2)), Float64Array.from([wAt(2, 1), wAt(2, 2)]));
});

test('ZIP64 records and extra fields, a zip comment, f16/bf16/f64 storages', async (t) => {
  const f16 = new Uint8Array(Uint16Array.from([0x3c00, 0xc000]).buffer); // 1, -2
  const bf16 = new Uint8Array(Uint16Array.from([0x3f80, 0x4040]).buffer); // 1, 3
  const f64 = new Uint8Array(Float64Array.from([0.1, -0.25]).buffer);
  const pickle = statePickle([
    { name: 'h', key: '0', storage: 'HalfStorage', numel: 2, offset: 0, shape: [1, 2], strides: [2, 1] },
    { name: 'b', key: '1', storage: 'BFloat16Storage', numel: 2, offset: 0, shape: [2, 1], strides: [1, 1] },
    { name: 'd', key: '2', storage: 'DoubleStorage', numel: 2, offset: 1, shape: [1], strides: [1] },
  ]);
  const bytes = torchZip(pickle, { '0': f16, '1': bf16, '2': f64 }, { zip64: true, comment: 'not torch, but legal' });
  const tensors = await readTorchBin(mem(bytes));
  t.deepEqual([...tensors.values()].map((x) => x.dtype), ['F16', 'BF16', 'F64']);
  t.deepEqual(await values(tensors.get('h')!), Float64Array.from([1, -2]));
  t.deepEqual(await values(tensors.get('b')!), Float64Array.from([1, 3]));
  t.deepEqual(await allValues(tensors.get('d')!), Float64Array.from([-0.25]));
  const zip = await readZipDirectory(mem(bytes));
  t.is(zip.entries.get('archive/data/2')?.size, 16);
});

test('a pickle naming os.system (GLOBAL) or builtins.eval (STACK_GLOBAL) is refused, naming it', async (t) => {
  // The classic payload: os.system('touch pwned') on load.
  const evil = Uint8Array.from([...P.proto(), ...P.global('os', 'system'), ...P.tuple(P.str('touch pwned')), ...P.reduce(), ...P.stop()]);
  await refused(t, torchZip(evil, {}), /^crafted\.bin: archive\/data\.pkl: refusing to load global os\.system: only tensor data is read from checkpoints, and this name is not on the allow-list \(pickle byte \d+\)$/);
  const evil4 = Uint8Array.from([0x80, 4, ...P.stackGlobal('builtins', 'eval'), ...P.tuple(P.str('1')), ...P.reduce(), ...P.stop()]);
  await refused(t, torchZip(evil4, {}), /refusing to load global builtins\.eval/);
  // A torch name off the list is refused too: the list is of names, not of modules.
  const load = Uint8Array.from([...P.proto(), ...P.global('torch', 'load'), ...P.tuple(P.str('x')), ...P.reduce(), ...P.stop()]);
  await refused(t, torchZip(load, {}), /refusing to load global torch\.load/);
});

test('the unpickler executes nothing: refused names are never called, unknown opcodes stop it', (t) => {
  let called = 0;
  const hooks = { global: () => undefined, persistentLoad: () => called++ };
  const where = 'x.pkl';
  t.throws(() => unpickle(Uint8Array.from([...P.proto(), ...P.global('subprocess', 'Popen'), ...P.stop()]), hooks, where), { message: /subprocess\.Popen/ });
  // INST (0x69) and OBJ (0x6f) build arbitrary objects in protocol 0/1: not on our list.
  t.throws(() => unpickle(Uint8Array.from([...P.proto(), ...P.mark(), 0x69, ...Buffer.from('os\nsystem\n'), ...P.stop()]), hooks, where), { message: /unsupported pickle opcode 0x69 \("i"\)/ });
  t.throws(() => unpickle(Uint8Array.from([...P.proto(), ...P.str('abc')]), hooks, where), { message: /pickle ends in the middle of an opcode/ });
  t.throws(() => unpickle(Uint8Array.from([...P.proto(), 0x58, 9, 0, 0, 0, 1]), hooks, where), { message: /pickle ends in the middle/ });
  t.is(called, 0);
  // The plain containers and scalars torch metadata uses decode as data.
  const ok = Uint8Array.from([...P.proto(), ...P.emptyDict(), ...P.str('a'), ...P.int(70000), 0x73, ...P.str('b'), 0x88, 0x73, ...P.str('c'), 0x8a, 2, 0xff, 0x7f, 0x73, ...P.stop()]);
  t.deepEqual(unpickle(ok, hooks, where), new Map<string, unknown>([['a', 70000], ['b', true], ['c', 32767]]));
});

test('a legacy (pre-1.6) torch.save file is refused with a clear message', async (t) => {
  const legacy = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 0x02]);
  await refused(t, legacy, 'crafted.bin: a legacy (pre-1.6, non-zip) torch.save file; re-save it with torch ≥ 1.6 or convert it to safetensors');
  await refused(t, Buffer.from('this is not a checkpoint at all, just some text that is long enough'), 'crafted.bin: not a zip file (no end-of-central-directory record)');
});

test('compressed entries are refused, naming the file and the entry', async (t) => {
  const pickle = statePickle([{ name: 'w', key: '0', storage: 'FloatStorage', numel: 12, offset: 0, shape: [3, 4], strides: [4, 1] }]);
  await refused(t, torchZip(pickle, { '0': f32Bytes(W) }, { compress: ['archive/data/0'] }), 'crafted.bin: zip entry archive/data/0 is compressed (method 8); only stored entries, as torch.save writes them, can be read by byte range');
  await refused(t, torchZip(pickle, { '0': f32Bytes(W) }, { compress: ['archive/data.pkl'] }), /^crafted\.bin: zip entry archive\/data\.pkl is compressed \(method 8\)/);
});

test('storages that are missing or too small for their tensor are refused', async (t) => {
  const pickle = statePickle([{ name: 'w', key: '0', storage: 'FloatStorage', numel: 12, offset: 4, shape: [3, 4], strides: [4, 1] }]);
  await refused(t, torchZip(pickle, {}), 'crafted.bin: tensor w needs storage entry archive/data/0, which is missing');
  await refused(t, torchZip(pickle, { '0': f32Bytes(W) }), 'crafted.bin: tensor w (offset 4, size [3,4], stride [4,1]) reaches past its storage of 12 elements');
  const lying = statePickle([{ name: 'w', key: '0', storage: 'FloatStorage', numel: 100, offset: 0, shape: [3, 4], strides: [4, 1] }]);
  await refused(t, torchZip(lying, { '0': f32Bytes(W) }), 'crafted.bin: storage 0 holds 48 bytes but 100 × F32 needs 400');
  const unsafeKey = statePickle([{ name: 'w', key: '../../x', storage: 'FloatStorage', numel: 12, offset: 0, shape: [3, 4], strides: [4, 1] }]);
  await refused(t, torchZip(unsafeKey, {}), /unsafe storage key "\.\.\/\.\.\/x"/);
});

test('non-float storages (a bool attention mask, as in pythia .bin files) open but are not analysable', async (t) => {
  const pickle = statePickle([{ name: 'attention.bias', key: '0', storage: 'BoolStorage', numel: 4, offset: 0, shape: [2, 2], strides: [2, 1] }]);
  const m = (await readTorchBin(mem(torchZip(pickle, { '0': Uint8Array.from([1, 0, 1, 1]) })))).get('attention.bias')!;
  t.is(m.dtype, 'BOOL');
  t.throws(() => requireFloatTensor(m), { instanceOf: InputError, message: /unsupported dtype BOOL/ });
});

test('a crafted .bin checkpoint folder opens through openCheckpoint, sharded by an index', async (t) => {
  const dir = join(tmp.dir, 'crafted');
  await mkdir(dir);
  await copyFile(join(hfFixture('gpt-neox-bin'), 'config.json'), join(dir, 'config.json'));
  const a = statePickle([{ name: 'wt', key: '0', storage: 'FloatStorage', numel: 12, offset: 0, shape: [4, 3], strides: [1, 4] }]);
  const b = statePickle([{ name: 'w', key: '0', storage: 'FloatStorage', numel: 12, offset: 0, shape: [3, 4], strides: [4, 1] }]);
  await writeFile(join(dir, 'pytorch_model-00001-of-00002.bin'), torchZip(a, { '0': f32Bytes(W) }));
  await writeFile(join(dir, 'pytorch_model-00002-of-00002.bin'), torchZip(b, { '0': f32Bytes(W) }));
  await writeFile(join(dir, 'pytorch_model.bin.index.json'), JSON.stringify({ weight_map: { wt: 'pytorch_model-00001-of-00002.bin', w: 'pytorch_model-00002-of-00002.bin' } }));
  await withCheckpoint(dir, async (c) => {
    t.is(c.files.length, 2);
    const wt = await readRowList(c.tensors.get('wt')!, [2]);
    t.deepEqual(decodeFloats('F32', wt.get(2)!), Float64Array.from([wAt(0, 2), wAt(1, 2), wAt(2, 2)]));
  });
});
