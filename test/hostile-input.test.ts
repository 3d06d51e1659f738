import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openModel } from '../coordinator/analysis/model-analysis.js';
import { matrixTasks } from '../worker/plan/shard-plan.js';
import { decodeTask, encodeTask } from '../proto/codec.js';
import { InputError, IntegrityError, MessageFormatError } from '../proto/errors.js';
import type { MfaParams, ShardTask } from '../proto/shard.js';
import { GrpcBackend } from '../worker/backends/grpc.js';
import { MemoryByteSource } from '../worker/io/byte-source.js';
import { decodeFloats } from '../worker/io/dtype.js';
import { unpickle } from '../worker/io/pickle.js';
import { readRows, readSafetensorsHeader } from '../worker/io/safetensors.js';
import { readTorchBin } from '../worker/io/torch-bin.js';
import { boxMassFromCodeHistogram, boxMassFromCodeLists } from '../worker/kernel/box-mass.js';
import { matrixCodes, type ShardCodes } from '../worker/matrix-histogram.js';
import { runCli, type CliResult } from './helpers/run-cli.js';
import { conformanceDir } from './helpers/shared.js';
import { hfFixture, makeTmpDir } from './helpers/tmp.js';
import { buildZip, f32Bytes, localHeaderOf, P, statePickle, torchZip } from './helpers/torch-zip.js';
import { startWorkerProcess } from './helpers/worker-process.js';

/**
 * Issue 10: inputs a hostile or careless user hands the CLI or a worker, each built here. Every
 * one must end in a clear one-line error naming the file (or the flag) — never a wrong
 * number with exit 0, a hang, a memory blow-up or an "unexpected error".
 */

const NEOX = join(conformanceDir, 'gptneox', 'neox-f16-trained');
const BIN = hfFixture('gpt-neox-bin');
const SAMPLED = ['--samples', '0', '--layer-sample', '8', '--threads', '1'];

let tmp: { dir: string; cleanup: () => Promise<void> };
let n = 0;
test.before(async () => {
  tmp = await makeTmpDir('neuromfa-hostile-');
});
test.after.always(() => tmp.cleanup());

/** A fresh directory holding a copy of `model`'s files (config.json and weights). */
async function copyModel(model: string, files: string[]): Promise<string> {
  const dir = join(tmp.dir, `m${n++}`);
  await mkdir(dir);
  for (const f of files) await copyFile(join(model, f), join(dir, f));
  return dir;
}

function oneLineFailure(t: ExecutionContext, r: CliResult, code: number, message: RegExp): void {
  t.is(r.code, code, r.stderr);
  const lines = r.stderr.split('\n').filter(Boolean);
  t.is(lines.length, 1, `one line: ${JSON.stringify(r.stderr.slice(0, 400))}`);
  t.regex(lines[0] ?? '', message);
  t.true(r.stderr.length < 400, 'a short line');
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---- zip: local headers against the central directory -----------------------------------------

test('a .bin whose local extra field is 64 bytes longer than written: refused (was alpha0 off by 3e-6, exit 0)', async (t) => {
  const dir = await copyModel(BIN, ['config.json', 'pytorch_model.bin']);
  const file = join(dir, 'pytorch_model.bin');
  const bytes = await readFile(file);
  const { header } = localHeaderOf(bytes, 'pytorch_model/data/3');
  bytes.writeUInt16LE(bytes.readUInt16LE(header + 28) + 64, header + 28);
  await writeFile(file, bytes);
  const message = new RegExp(`^neuromfa: ${esc(file)}: entry pytorch_model/data/3: data \\[\\d+, \\d+\\) runs past the next entry, which starts at \\d+$`);
  const [full, sampled] = await Promise.all([runCli(['analyze', dir, '--full', '--threads', '1']), runCli(['analyze', dir, ...SAMPLED])]);
  oneLineFailure(t, full, 3, message);
  oneLineFailure(t, sampled, 3, message);
});

const W = Array.from({ length: 12 }, (_, i) => (i + 1) * 0.5 - 3);
const onePickle = statePickle([{ name: 'w', key: '0', storage: 'FloatStorage', numel: 12, offset: 0, shape: [3, 4], strides: [4, 1] }]);
const mem = (bytes: Uint8Array) => new MemoryByteSource('crafted.bin', bytes);

test('data descriptors (torch.save writes them) are read and checked against the central directory', async (t) => {
  const good = torchZip(onePickle, { '0': f32Bytes(W) }, { descriptor: true });
  const w = (await readTorchBin(mem(good))).get('w')!;
  t.deepEqual(decodeFloats('F32', await readRows(w, 0, 3)), Float64Array.from(W));

  const mutate = (edit: (b: Buffer, at: { header: number; data: number }) => void, entry = 'archive/data/0') => {
    const b = Buffer.from(good);
    edit(b, localHeaderOf(b, entry));
    return b;
  };
  const cases: Array<[string, Uint8Array, string]> = [
    ['data 4 bytes later', mutate((b, { header }) => b.writeUInt16LE(b.readUInt16LE(header + 28) + 4, header + 28)), 'entry archive/data/0: a data descriptor signature ends its data at 500: the data starts 4 bytes earlier than its local header says'],
    ['data 8 bytes later', mutate((b, { header }) => b.writeUInt16LE(b.readUInt16LE(header + 28) + 8, header + 28)), 'entry archive/data/0: data ends at 504, 8 bytes before the next entry at 512, where a data descriptor of 12 to 24 bytes belongs'],
    ['descriptor CRC', mutate((b, { data }) => (b[data + 48 + 4] ^= 1)), 'entry archive/data/0: the data descriptor at 496 disagrees with the central directory (CRC-32 or sizes)'],
    ['local name', mutate((b, { header }) => (b[header + 30 + 13] = 0x31)), 'entry archive/data/0: local header and central directory disagree on the name'],
    ['local method', mutate((b, { header }) => b.writeUInt16LE(8, header + 8)), 'entry archive/data/0: local header and central directory disagree on the method'],
    ['local flags', mutate((b, { header }) => b.writeUInt16LE(0x0800, header + 6)), 'entry archive/data/0: local header and central directory disagree on the flags'],
    ['local size', mutate((b, { header }) => b.writeUInt32LE(44, header + 22)), 'entry archive/data/0: local header and central directory disagree on the sizes'],
  ];
  for (const [what, bytes, message] of cases) {
    const err = await t.throwsAsync(readTorchBin(mem(bytes)), { instanceOf: InputError }, what);
    t.is(err?.message, `crafted.bin: ${message}`, what);
  }
  // Without a descriptor the local header carries CRC and sizes itself.
  const plain = Buffer.from(torchZip(onePickle, { '0': f32Bytes(W) }));
  plain.writeUInt32LE(plain.readUInt32LE(localHeaderOf(plain, 'archive/data/0').header + 14) ^ 1, localHeaderOf(plain, 'archive/data/0').header + 14);
  await t.throwsAsync(readTorchBin(mem(plain)), { instanceOf: InputError, message: 'crafted.bin: entry archive/data/0: local header and central directory disagree on the CRC-32' });
});

test('zip CRC-32: --full checks every storage it reads and refuses a corrupt one (exit 4); sampled reads cannot', async (t) => {
  const dir = await copyModel(BIN, ['config.json', 'pytorch_model.bin']);
  const file = join(dir, 'pytorch_model.bin');
  const bytes = await readFile(file);
  bytes[localHeaderOf(bytes, 'pytorch_model/data/5').data + 100] ^= 0x40;
  await writeFile(file, bytes);
  const [full, sampled] = await Promise.all([runCli(['analyze', dir, '--full', '--threads', '1']), runCli(['analyze', dir, ...SAMPLED, '--json'])]);
  oneLineFailure(t, full, 4, new RegExp(`^neuromfa: ${esc(file)}: zip entry pytorch_model/data/5 has CRC-32 [0-9a-f]{8} but the archive records [0-9a-f]{8}: the file is corrupt$`));
  // Documented: a sampled read touches a few rows of an entry, so it has no CRC to compare.
  t.is(sampled.code, 0, sampled.stderr);
  const good = await runCli(['analyze', BIN, '--full', '--threads', '1', '--json']);
  t.is(good.code, 0, good.stderr);
});

// ---- pickle -------------------------------------------------------------------------------------

const hooks = { global: () => undefined, persistentLoad: (p: unknown) => p };

test('pickle LONG4: a 200 KB operand fails at once with a short message; sign padding is accepted', (t) => {
  const size = 200 * 1024;
  const long4 = Buffer.alloc(3 + 4 + size + 1);
  long4.set([0x80, 2, 0x8b]);
  long4.writeUInt32LE(size, 3);
  long4.fill(0x11, 7, 7 + size);
  long4[7 + size] = 0x2e;
  const err = t.throws(() => unpickle(long4, hooks, 'x.bin: data.pkl'), { instanceOf: InputError });
  t.is(err?.message, `x.bin: data.pkl: a ${size}-byte integer is beyond 2^53 (pickle byte ${7 + size})`);
  // 20 bytes: -5 in two's complement, padded with 0xff: what Python may write for a small long.
  const padded = Uint8Array.from([0x80, 2, 0x8b, 20, 0, 0, 0, 0xfb, ...Array(19).fill(0xff), 0x2e]);
  t.is(unpickle(padded, hooks, 'x'), -5);
});

test('pickle lists and tuples of 300,000 items decode; a call with 300,000 arguments is refused naming the file', async (t) => {
  const items = 300_000;
  // [] MARK 1 1 1 ... APPENDS STOP
  const list = Buffer.alloc(4 + 2 * items + 2);
  list.set([0x80, 2, 0x5d, 0x28]);
  for (let i = 0; i < items; i++) list.set([0x4b, i & 0x7f], 4 + 2 * i);
  list.set([0x65, 0x2e], 4 + 2 * items);
  const got = unpickle(list, hooks, 'x') as number[];
  t.is(got.length, items);
  t.is(got[items - 1], (items - 1) & 0x7f);
  // collections.OrderedDict(*300k args), inside a real .bin next to the state dict's tensors.
  const reduce = Buffer.concat([Buffer.from([0x80, 2, ...P.global('collections', 'OrderedDict'), 0x28]), list.subarray(4, 4 + 2 * items), Buffer.from([0x74, 0x52, 0x2e])]);
  const err = await t.throwsAsync(readTorchBin(mem(torchZip(reduce, {}))), { instanceOf: InputError });
  t.regex(err!.message, /^crafted\.bin: archive\/data\.pkl: REDUCE of collections\.OrderedDict with 300000 arguments \(pickle byte \d+\)$/);
  // Through the CLI: a state dict holding a 300k-item list is read; its missing blocks are the error.
  const dir = join(tmp.dir, 'bigpickle');
  await mkdir(dir);
  await copyFile(join(BIN, 'config.json'), join(dir, 'config.json'));
  const dict = Buffer.concat([Buffer.from([0x80, 2, 0x7d, ...P.str('big'), 0x5d, 0x28]), list.subarray(4, 4 + 2 * items), Buffer.from([0x65, 0x73, 0x2e])]);
  await writeFile(join(dir, 'pytorch_model.bin'), torchZip(dict, {}));
  oneLineFailure(t, await runCli(['analyze', dir, ...SAMPLED]), 3, new RegExp(`^neuromfa: ${esc(dir)}: config.json says num_hidden_layers = 2, but the checkpoint holds 0 blocks`));
});

// ---- safetensors: the data section exactly covered ----------------------------------------------

function safetensors(header: object, data: Uint8Array): Uint8Array {
  const body = Buffer.from(JSON.stringify(header));
  return Buffer.concat([Buffer.from(new BigUint64Array([BigInt(body.length)]).buffer), body, data]);
}

test('safetensors: bytes after the last tensor or between tensors are refused, as the reference reader does', async (t) => {
  const header = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };
  const ok = await readSafetensorsHeader(new MemoryByteSource('x.safetensors', safetensors(header, new Uint8Array(12))));
  t.is(ok.tensors.size, 2);
  await t.throwsAsync(readSafetensorsHeader(new MemoryByteSource('x.safetensors', safetensors(header, new Uint8Array(13)))), {
    instanceOf: InputError,
    message: "x.safetensors: 1 bytes after the last tensor's data (the data section is 13 bytes, the tensors cover 12)",
  });
  const gap = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } };
  await t.throwsAsync(readSafetensorsHeader(new MemoryByteSource('x.safetensors', safetensors(gap, new Uint8Array(16)))), {
    instanceOf: InputError,
    message: 'x.safetensors: data bytes [8, 12) after tensor a belong to no tensor',
  });
  const dir = await copyModel(NEOX, ['config.json', 'model.safetensors']);
  await writeFile(join(dir, 'model.safetensors'), Buffer.concat([await readFile(join(dir, 'model.safetensors')), Buffer.alloc(64)]));
  oneLineFailure(t, await runCli(['analyze', dir, ...SAMPLED]), 3, new RegExp(`^neuromfa: ${esc(join(dir, 'model.safetensors'))}: 64 bytes after the last tensor's data`));
});

// ---- config.json ----------------------------------------------------------------------------------

async function withConfig(edit: (c: Record<string, unknown>) => string): Promise<string> {
  const dir = await copyModel(NEOX, ['model.safetensors']);
  await writeFile(join(dir, 'config.json'), edit(JSON.parse(await readFile(join(NEOX, 'config.json'), 'utf8'))));
  return dir;
}

test('config.json: absurd or wrong block counts are refused before planning, naming the count and what exists', async (t) => {
  const layers = JSON.parse(await readFile(join(NEOX, 'config.json'), 'utf8')).num_hidden_layers as number;
  for (const [value, message] of [
    [1e7, 'config.json says num_hidden_layers = 10000000; at most 10000 blocks are supported'],
    [1e300, 'config.json says num_hidden_layers = 1e+300; at most 10000 blocks are supported'],
    [layers + 1, `config.json says num_hidden_layers = ${layers + 1}, but the checkpoint holds ${layers} blocks (no tensor gpt_neox.layers.${layers}.attention.dense.weight); the config does not match the weights`],
  ] as const) {
    const dir = await withConfig((c) => JSON.stringify({ ...c, num_hidden_layers: value }));
    oneLineFailure(t, await runCli(['analyze', dir, ...SAMPLED]), 3, new RegExp(`^neuromfa: ${esc(dir)}: ${esc(message)}$`));
  }
});

test('config.json: a byte-order mark is skipped; a syntax error is one line', async (t) => {
  const bom = await withConfig((c) => `\ufeff${JSON.stringify(c, null, 2)}`);
  const [withBom, plain] = await Promise.all([runCli(['analyze', bom, ...SAMPLED, '--json']), runCli(['analyze', NEOX, ...SAMPLED, '--json'])]);
  t.is(withBom.code, 0, withBom.stderr);
  t.deepEqual(JSON.parse(withBom.stdout).samples, JSON.parse(plain.stdout).samples);
  const broken = await withConfig(() => '{\n  "hidden_size": 8,\n  "x": }\n');
  oneLineFailure(t, await runCli(['analyze', broken, ...SAMPLED]), 3, new RegExp(`^neuromfa: ${esc(join(broken, 'config.json'))}: not valid JSON \\(`));
});

// ---- flags and the memory they imply ---------------------------------------------------------------

test('flags whose product overflows int32 buckets, or asks for unbounded work, are usage errors (exit 2)', async (t) => {
  const edges = join(conformanceDir, 'cases', 'gaussian-init', 'edges.npy');
  const cases: Array<[string[], RegExp]> = [
    [['mfa', edges, '--decimals', '6', '--threshold', '2200'], /^neuromfa: --threshold 2200 --decimals 6: threshold 2200 with 6 decimals gives radii up to 2200 × 10\^6, beyond the 2\^31 - 1 buckets the kernel counts in; lower the threshold below 2147 or use fewer decimals$/],
    [['mfa', edges, '--q', Array.from({ length: 10_001 }, (_, k) => k / 1000).join(',')], /^neuromfa: --q lists 10001 values; at most 10000$/],
    [['mfa', edges, '--q', '0:1:1e-30'], /^neuromfa: --q grid has Infinity points; at most 10000$/],
    [['mfa', edges, '--q', '-1000,0'], /^neuromfa: --q values must lie within \[-100, 100\], got -1000$/],
    [['mfa', edges, '--min-neighbors', '5e9'], /^neuromfa: --min-neighbors expects an integer from 0 to 4294967295, got "5e9"$/],
    [['analyze', NEOX, '--samples', '0-4294967295'], /^neuromfa: --samples names more than 100000 samples$/],
    [['analyze', NEOX, '--full', '--shard-mb', '1e9'], /^neuromfa: --shard-mb must be in \(0, 4096\], got "1e9"$/],
    [['mfa', edges, '--threshold', `1\n${'x'.repeat(100_000)}`], /^neuromfa: --threshold expects a number, got "1\\nx{78}"… \(100002 characters\)$/],
  ];
  for (const [args, message] of cases) oneLineFailure(t, await runCli(args), 2, message);
  const edge = await runCli(['mfa', edges, '--decimals', '6', '--threshold', '2147', '--json']);
  t.is(edge.code, 0, edge.stderr);
});

const paramsAt = (threshold: number, decimals: number): MfaParams => ({ threshold, decimals, minNeighbors: 10, q: [-1, 0, 1] });
const codesOf = (tasks: ShardTask[], p: MfaParams, form?: ShardCodes['kind']) =>
  Promise.all(
    tasks.map(async (task) => {
      if (task.input.kind !== 'matrix') throw new Error('matrix task expected');
      const { parts, inputs, colStart, colEnd } = task.input;
      return { nodes: colEnd - colStart, codes: (await matrixCodes(parts, inputs, colStart, colEnd, p, undefined, form)).codes };
    }),
  );
const boxOf = ({ nodes, codes }: { nodes: number; codes: ShardCodes }, p: MfaParams) =>
  codes.kind === 'histogram' ? boxMassFromCodeHistogram(codes.hist, nodes, p) : boxMassFromCodeLists(codes.codes, nodes, codes.degree, p);

test('full-NIN box masses: per-node code lists equal the dense histogram exactly, and take over when the grid is wide', async (t) => {
  const { ckpt, layout } = await openModel(NEOX, 8);
  try {
    for (const [threshold, decimals] of [[150, 0], [150, 2], [37.5, 1], [150, 3]] as const) {
      const p = paramsAt(threshold, decimals);
      const tasks = matrixTasks(layout.matrices, ckpt, p, 1 << 14).slice(0, 6);
      const [dense, lists] = await Promise.all([codesOf(tasks, p, 'histogram'), codesOf(tasks, p, 'lists')]);
      lists.forEach((l, k) => {
        t.is(l.codes.kind, 'lists');
        t.deepEqual(boxOf(l, p), boxOf(dense[k], p), `T ${threshold}, p ${decimals}, shard ${k}`);
      });
    }
    // What a run picks: the dense grid at the defaults; lists at --decimals 4 and --threshold 1e6,
    // whose dense grids took 6.1 GB and 4.1 GB for this 1.2 MB checkpoint.
    const pick = async (p: MfaParams) => (await codesOf(matrixTasks(layout.matrices, ckpt, p, 32 << 20), p)).map((c) => c.codes.kind);
    t.true((await pick(paramsAt(150, 0))).every((k) => k === 'histogram'));
    t.true((await pick(paramsAt(150, 4))).every((k) => k === 'lists'));
    t.true((await pick(paramsAt(1e6, 0))).every((k) => k === 'lists'));
  } finally {
    await ckpt.close();
  }
  const runs = await Promise.all([['--decimals', '4'], ['--threshold', '1e6']].map((flags) => runCli(['analyze', NEOX, '--full', '--threads', '1', '--json', ...flags])));
  for (const r of runs) {
    t.is(r.code, 0, r.stderr);
    t.true(Number.isFinite(JSON.parse(r.stdout).samples[0].alpha0));
  }
});

// ---- the wire: a worker enforces the CLI's limits ---------------------------------------------------

const q2M = () => Array.from({ length: 2_000_000 }, (_, k) => k / 1e5 - 10);

test('a task the CLI could not have sent is a MessageFormatError, refused before it is copied', (t) => {
  const task: ShardTask = { id: 1, measure: 'mfa', params: { threshold: 150, decimals: 0, minNeighbors: 1, q: [0, 1] }, input: { kind: 'groups', weights: Float64Array.of(0.5), stride: 1, offsets: Uint32Array.of(0, 1) } };
  const refused = (patch: (t: ShardTask) => ShardTask, message: RegExp) => t.throws(() => decodeTask(encodeTask(patch(structuredClone(task)))), { instanceOf: MessageFormatError, message });
  refused((x) => ({ ...x, params: { ...x.params, q: q2M() } }) as ShardTask, /^params\.q: expected at most 10000 values, got 16000000 bytes$/);
  refused((x) => ({ ...x, params: { ...x.params, threshold: 2200, decimals: 6 } }) as ShardTask, /^params: threshold 2200 with 6 decimals gives radii up to/);
  refused((x) => ({ ...x, params: { ...x.params, q: [0, 1000] } }) as ShardTask, /^params\.q: q values must be finite and within \[-100, 100\], got 1000$/);
  refused(
    (x) => ({ ...x, input: { kind: 'matrix', inputs: 2 ** 31 - 1, colStart: 0, colEnd: 2 ** 31 - 1, parts: [{ tensor: 'w', file: 'f', dataStart: 0, dtype: 'F64', rows: 2 ** 20, transposed: false }] } }) as ShardTask,
    new RegExp(`^input: expected a shard of at most 4294967296 weight bytes, got ${(2 ** 31 - 1) * 2 ** 20 * 8}$`),
  );
});

test('a worker answers a 2,000,000-q task as malformed input, keeps serving, and a FIFO under --model-root fails its shard without blocking SIGTERM', async (t) => {
  const root = join(tmp.dir, 'root');
  await mkdir(join(root, 'neox'), { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) await copyFile(join(NEOX, f), join(root, 'neox', f));
  execFileSync('mkfifo', [join(root, 'neox', 'pipe.safetensors')]);
  const { ckpt, layout } = await openModel(join(root, 'neox'), 8);
  const [task] = matrixTasks(layout.matrices, ckpt, paramsAt(150, 0), 1 << 14);
  await ckpt.close();
  const w = await startWorkerProcess(['--threads', '1', '--grpc', '127.0.0.1:0', '--model-root', root], { readyTimeoutMs: 60_000 });
  const backend = new GrpcBackend(w.grpcAddress!, { deadlineMs: 20_000 });
  try {
    const good = await backend.run(task);
    await t.throwsAsync(backend.run({ ...task, params: { ...task.params, q: q2M() } } as ShardTask), { instanceOf: MessageFormatError, message: /^params\.q: expected at most 10000 values/ });
    if (task.input.kind !== 'matrix') return t.fail();
    const fifo = { ...task, input: { ...task.input, parts: task.input.parts.map((p) => ({ ...p, file: 'neox/pipe.safetensors' })) } } as ShardTask;
    await t.throwsAsync(backend.run(fifo), { instanceOf: InputError, message: new RegExp(`^${esc(join(root, 'neox', 'pipe.safetensors'))}: not a regular file \\(a FIFO\\); only regular files are read$`) });
    t.deepEqual({ ...(await backend.run(task)), seconds: 0 }, { ...good, seconds: 0 }, 'still serving');
  } finally {
    await backend.close();
  }
  t.deepEqual(await w.stop(), { code: 0, signal: null }, 'SIGTERM stops it');
});

test('FIFOs in a checkpoint folder (weights or config.json) are refused at once', async (t) => {
  const weights = await copyModel(NEOX, ['config.json']);
  execFileSync('mkfifo', [join(weights, 'model.safetensors')]);
  oneLineFailure(t, await runCli(['analyze', weights, ...SAMPLED], { timeoutMs: 30_000 }), 3, new RegExp(`^neuromfa: ${esc(join(weights, 'model.safetensors'))}: not a regular file \\(a FIFO\\)`));
  const config = await copyModel(NEOX, ['model.safetensors']);
  execFileSync('mkfifo', [join(config, 'config.json')]);
  oneLineFailure(t, await runCli(['analyze', config, ...SAMPLED], { timeoutMs: 30_000 }), 3, new RegExp(`^neuromfa: ${esc(join(config, 'config.json'))}: not a regular file \\(a FIFO\\)`));
});

// ---- output locations, checked before any work -----------------------------------------------------

test('--out that cannot be written is one line and exit 3 before any work: a file, /proc, a file as parent', async (t) => {
  const file = join(tmp.dir, 'a-file');
  await writeFile(file, 'x');
  const cases: Array<[string[], RegExp]> = [
    [['analyze', NEOX, ...SAMPLED, '--out', file], new RegExp(`^neuromfa: ${esc(file)}: exists and is not a directory; --out names a directory$`)],
    [['analyze', NEOX, ...SAMPLED, '--out', '/proc/x'], /^neuromfa: \/proc\/x: cannot write the output there \(\/proc does not accept new files\)$/],
    [['emergence', NEOX, NEOX, ...SAMPLED, '--out', '/proc/x/y'], /^neuromfa: \/proc\/x\/y: cannot write the output there \(\/proc does not accept new files\)$/],
    [['analyze', NEOX, ...SAMPLED, '--out', join(file, 'sub')], new RegExp(`^neuromfa: ${esc(join(file, 'sub'))}: cannot be created, ${esc(file)} is not a directory$`)],
    [['nin', NEOX, '--sample', '0', '--out', '/proc/x.npy'], /^neuromfa: \/proc\/x\.npy: cannot write the output there \(\/proc does not accept new files\)$/],
    [['nin', NEOX, '--sample', '0', '--out', join(tmp.dir, 'none', 'x.npy')], new RegExp(`^neuromfa: ${esc(join(tmp.dir, 'none', 'x.npy'))}: cannot write the output \\(the directory ${esc(join(tmp.dir, 'none'))} does not exist\\)$`)],
  ];
  for (const [args, message] of cases) oneLineFailure(t, await runCli(args, { timeoutMs: 30_000 }), 3, message);
});

(process.getuid?.() === 0 ? test.skip : test)('--out in a directory without write permission is exit 3 (skipped as root, who may write anywhere)', async (t) => {
  const locked = join(tmp.dir, 'locked');
  await mkdir(locked);
  await chmod(locked, 0o555);
  oneLineFailure(t, await runCli(['analyze', NEOX, ...SAMPLED, '--out', join(locked, 'report')]), 3, /cannot write the output there \(permission denied\)$/);
});
