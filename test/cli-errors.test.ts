import test, { type ExecutionContext } from 'ava';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { npyEdgeBytes } from '../worker/io/npy.js';
import { writeConfigJson, writeSafetensors, type TensorToWrite } from '../worker/io/safetensors-writer.js';
import { runCli, type CliResult } from './helpers/run-cli.js';
import { makeTmpDir } from './helpers/tmp.js';

/**
 * The bad-input list of issue 2, through the real CLI: every case exits with its code,
 * prints exactly one `neuromfa: ` line naming the file and the problem, no stack trace,
 * and leaves no output (nor a temporary) behind.
 */

const H = 32;
const LAYERS = 2;
const neoxConfig = (over: Record<string, unknown> = {}) => ({
  architectures: ['GPTNeoXForCausalLM'],
  model_type: 'gpt_neox',
  hidden_size: H,
  num_hidden_layers: LAYERS,
  num_attention_heads: 4,
  intermediate_size: 4 * H,
  ...over,
});

/** Deterministic weights ~ N(0, 0.02²): distances 1/|w| mostly inside (1, 150]. */
function gaussian(count: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
  };
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = 0.02 * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

function neoxTensors(blocks = LAYERS, width = H): TensorToWrite[] {
  const out: TensorToWrite[] = [];
  let seed = 1;
  const m = (name: string, rows: number, cols: number) => out.push({ name, dtype: 'F32', shape: [rows, cols], data: gaussian(rows * cols, seed++) });
  for (let b = 0; b < blocks; b++) {
    const at = `gpt_neox.layers.${b}.`;
    m(`${at}attention.query_key_value.weight`, 3 * width, width);
    m(`${at}attention.dense.weight`, width, width);
    m(`${at}mlp.dense_h_to_4h.weight`, 4 * width, width);
    m(`${at}mlp.dense_4h_to_h.weight`, width, 4 * width);
  }
  return out;
}

async function writeModel(dir: string, tensors: TensorToWrite[], config: Record<string, unknown> | null = neoxConfig()): Promise<string> {
  await mkdir(dir, { recursive: true });
  if (config) await writeConfigJson(dir, config);
  await writeSafetensors(join(dir, 'model.safetensors'), tensors);
  return dir;
}

/** A safetensors file from a raw header object (or raw header text) and data bytes. */
function rawSafetensors(header: unknown, data: Uint8Array, headerLen?: number): Uint8Array {
  const body = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + body.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? body.length), true);
  out.set(body, 8);
  out.set(data, 8 + body.length);
  return out;
}

async function writeRawModel(dir: string, bytes: Uint8Array | string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeConfigJson(dir, neoxConfig());
  await writeFile(join(dir, 'model.safetensors'), bytes);
  return dir;
}

let root = '';
let cleanup: () => Promise<void> = async () => undefined;
let goodModel = '';
/** A valid edge list for the flag cases: the flags must be rejected before it is read. */
let edgesNpy = '';
let n = 0;
/** A fresh directory per case, so cases run concurrently without seeing each other's files. */
const fresh = async (name: string) => {
  const d = join(root, `${String(n++).padStart(2, '0')}-${name}`);
  await mkdir(d, { recursive: true });
  return d;
};

test.before(async () => {
  ({ dir: root, cleanup } = await makeTmpDir('neuromfa-cli-errors-'));
  goodModel = await writeModel(join(root, 'good'), neoxTensors());
  // Node i links to 20 nodes with distances spread over 2..21: enough to analyse.
  const rows: number[] = [];
  for (let i = 0; i < 12; i++) for (let j = 0; j < 20; j++) rows.push(i, 100 + j, 1 / (2 + ((i + j) % 20)));
  edgesNpy = join(root, 'edges.npy');
  await writeFile(edgesNpy, npyEdgeBytes(Float64Array.from(rows)));
});
test.after.always(() => cleanup());

const STACK = /^\s+at /m;

/** The common contract of a failed run. */
function assertFailure(t: ExecutionContext, r: CliResult, code: number, message: RegExp): void {
  t.is(r.code, code, `exit code; stderr: ${r.stderr}`);
  t.false(STACK.test(r.stderr), `no stack trace: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  t.is(lines.length, 1, `exactly one line on stderr: ${JSON.stringify(r.stderr)}`);
  t.true(r.stderr.startsWith('neuromfa: '), r.stderr);
  t.true(r.stderr.endsWith('\n'), 'the line is terminated');
  t.regex(lines[0] ?? '', message);
  t.is(r.stdout, '', 'nothing on stdout');
}

/** Nothing under `dir` but the listed names: no output, no partial output, no *.tmp. */
function assertOnly(t: ExecutionContext, dir: string, names: string[]): void {
  t.deepEqual(readdirSync(dir).sort(), [...names].sort(), `files left in ${dir}`);
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const ANALYZE = ['--samples', '0', '--layer-sample', '8', '--threads', '1'];

/** analyze with --out and nin with --out on a bad model: same error, nothing written by either. */
async function badModel(t: ExecutionContext, dir: string, model: string, message: RegExp): Promise<void> {
  const before = readdirSync(dir).sort();
  const [a, b] = await Promise.all([
    runCli(['analyze', model, ...ANALYZE, '--json', '--out', join(dir, 'report')]),
    runCli(['nin', model, '--sample', '0', '--layer-sample', '8', '--out', join(dir, 'x.npy')]),
  ]);
  assertFailure(t, a, 3, message);
  assertFailure(t, b, 3, message);
  assertOnly(t, dir, before);
}

test('missing path', async (t) => {
  const d = await fresh('missing');
  const model = join(d, 'no-such-model');
  await badModel(t, d, model, new RegExp(`^neuromfa: ${esc(model)}: no such file or directory$`));
  const r = await runCli(['mfa', join(d, 'no-such.npy')]);
  assertFailure(t, r, 3, new RegExp(`${esc(join(d, 'no-such.npy'))}.*(no such file|ENOENT|does not exist)`, 'i'));
  const c = await runCli(['mfa', join(d, 'no-such.csv')]);
  assertFailure(t, c, 3, new RegExp(`${esc(join(d, 'no-such.csv'))}: no such file`));
});

test('a file that is not safetensors', async (t) => {
  const d = await fresh('text');
  const model = await writeRawModel(join(d, 'model'), 'this is a text file, not a checkpoint\n'.repeat(3));
  await badModel(t, d, model, new RegExp(`^neuromfa: ${esc(join(model, 'model.safetensors'))}: not a safetensors file`));
  // A file too short to hold even the length prefix.
  const tiny = await writeRawModel(join(d, 'tiny'), 'hi\n');
  await badModel(t, d, tiny, new RegExp(`${esc(join(tiny, 'model.safetensors'))}: not a safetensors file \\(too short\\)`));
});

test('truncated file', async (t) => {
  const d = await fresh('truncated');
  const whole = await readFile(join(goodModel, 'model.safetensors'));
  const model = await writeRawModel(join(d, 'model'), whole.subarray(0, whole.length - 1000));
  await badModel(t, d, model, new RegExp(`${esc(join(model, 'model.safetensors'))}: truncated: the header describes \\d+ data bytes but only \\d+ follow it`));
});

test('header length larger than the file', async (t) => {
  const d = await fresh('header-length');
  const header = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const model = await writeRawModel(join(d, 'model'), rawSafetensors(header, new Uint8Array(8), 1_000_000));
  await badModel(t, d, model, new RegExp(`${esc(join(model, 'model.safetensors'))}: .*header length 1000000 exceeds file size \\d+`));
});

test('invalid header JSON', async (t) => {
  const d = await fresh('header-json');
  const model = await writeRawModel(join(d, 'model'), rawSafetensors('{"w": {"dtype": "F32", ', new Uint8Array(8)));
  await badModel(t, d, model, new RegExp(`${esc(join(model, 'model.safetensors'))}: .*header is not valid JSON`));
});

test('tensor offsets outside the data', async (t) => {
  const d = await fresh('outside');
  const header = {
    a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
    b: { dtype: 'F32', shape: [4], data_offsets: [1024, 1040] },
  };
  const model = await writeRawModel(join(d, 'model'), rawSafetensors(header, new Uint8Array(32)));
  await badModel(t, d, model, new RegExp(`${esc(join(model, 'model.safetensors'))}: tensor b: data_offsets \\[1024, 1040\\] lie outside the data section \\(32 bytes\\)`));
});

test('overlapping offsets', async (t) => {
  const d = await fresh('overlap');
  const header = {
    a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
    b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
  };
  const model = await writeRawModel(join(d, 'model'), rawSafetensors(header, new Uint8Array(24)));
  await badModel(t, d, model, new RegExp(`${esc(join(model, 'model.safetensors'))}: tensors a \\[0, 16\\] and b \\[8, 24\\] overlap`));
});

test('shape × dtype differs from the byte length', async (t) => {
  const d = await fresh('shape-bytes');
  const header = { w: { dtype: 'F32', shape: [4, 4], data_offsets: [0, 32] } };
  const model = await writeRawModel(join(d, 'model'), rawSafetensors(header, new Uint8Array(32)));
  await badModel(t, d, model, new RegExp(`${esc(join(model, 'model.safetensors'))}: tensor w: shape \\[4, 4\\] × F32 needs 64 bytes but data_offsets \\[0, 32\\] hold 32`));
});

test('unsupported dtype in a layout position names the tensor', async (t) => {
  const d = await fresh('dtype');
  const tensors = neoxTensors();
  const name = 'gpt_neox.layers.0.attention.dense.weight';
  const i = tensors.findIndex((x) => x.name === name);
  // I8 is not a dtype the writer encodes: write the file by hand from the same layout.
  const header: Record<string, unknown> = {};
  const parts: Uint8Array[] = [];
  let at = 0;
  tensors.forEach((x, k) => {
    const bytes = k === i ? new Uint8Array(H * H).fill(3) : new Uint8Array((x.data as Float32Array).buffer);
    header[x.name] = { dtype: k === i ? 'I8' : 'F32', shape: x.shape, data_offsets: [at, at + bytes.length] };
    parts.push(bytes);
    at += bytes.length;
  });
  const model = await writeRawModel(join(d, 'model'), rawSafetensors(header, Buffer.concat(parts)));
  await badModel(t, d, model, new RegExp(`${esc(join(model, 'model.safetensors'))}: tensor ${esc(name)} has unsupported dtype I8`));
});

test('missing tensors for the layout', async (t) => {
  const d = await fresh('missing-tensors');
  const model = await writeModel(join(d, 'model'), neoxTensors(1)); // config says 2 blocks
  await badModel(t, d, model, new RegExp(`^neuromfa: ${esc(model)}: config\\.json says num_hidden_layers = 2, but the checkpoint holds 1 block \\(no tensor gpt_neox\\.layers\\.1\\.attention\\.dense\\.weight\\); the config does not match the weights$`));
});

test('config.json missing', async (t) => {
  const d = await fresh('no-config');
  const model = await writeModel(join(d, 'model'), neoxTensors(), null);
  await badModel(t, d, model, new RegExp(`^neuromfa: ${esc(join(model, 'config.json'))}: missing`));
});

test('config.json inconsistent with the tensor shapes', async (t) => {
  const d = await fresh('config-shapes');
  const model = await writeModel(join(d, 'model'), neoxTensors(), neoxConfig({ hidden_size: 64, intermediate_size: 256 }));
  await badModel(
    t,
    d,
    model,
    new RegExp(`^neuromfa: ${esc(model)}.*: tensor gpt_neox\\.layers\\.0\\.attention\\.query_key_value\\.weight has shape \\[96, 32\\] but config\\.json implies \\[192, 64\\]`),
  );
});

test('unknown architecture lists the supported ones', async (t) => {
  const d = await fresh('arch');
  const model = await writeModel(join(d, 'model'), neoxTensors(), { architectures: ['T5ForConditionalGeneration'], model_type: 't5', d_model: H });
  await badModel(t, d, model, /unsupported architecture T5ForConditionalGeneration.*supported:.*GPTNeoXForCausalLM.*LlamaForCausalLM.*GPT2LMHeadModel/);
});

test('NaN and Inf weights are skipped and counted, not an error', async (t) => {
  const d = await fresh('nonfinite');
  const tensors = neoxTensors();
  // Full NIN: every weight of every layout matrix is touched exactly once.
  const dense = tensors.find((x) => x.name === 'gpt_neox.layers.1.mlp.dense_4h_to_h.weight')!.data as Float32Array;
  const planted = [NaN, NaN, Infinity, -Infinity, NaN];
  planted.forEach((v, k) => (dense[17 + 101 * k] = v));
  // Sampled NIN: block 0's attention.dense is all NaN, so each sample touches k × k of them.
  (tensors.find((x) => x.name === 'gpt_neox.layers.0.attention.dense.weight')!.data as Float32Array).fill(NaN);
  const model = await writeModel(join(d, 'model'), tensors);
  const [full, sampled] = await Promise.all([
    runCli(['analyze', model, '--full', '--json', '--threads', '1']),
    runCli(['analyze', model, '--samples', '0-1', '--layer-sample', '8', '--json', '--threads', '1']),
  ]);
  t.is(full.code, 0, full.stderr);
  t.is(sampled.code, 0, sampled.stderr);
  const f = JSON.parse(full.stdout);
  const s = JSON.parse(sampled.stdout);
  t.is(f.stats.skippedNonFinite, planted.length + H * H);
  t.is(s.stats.skippedNonFinite, 2 * 8 * 8);
  for (const r of [...f.samples, ...s.samples]) {
    t.true(Number.isFinite(r.alpha0) && Number.isFinite(r.width), 'finite results');
    t.true(r.tau.every(Number.isFinite));
  }
});

/** Writes a .npy with any dtype descriptor and shape (NumPy format 1.0). */
function npyBytes(descr: string, shape: number[], data: Uint8Array): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 11, ' ') + '\n';
  const out = new Uint8Array(total + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(data, total);
  return out;
}

test('.npy that is not float64 (E, 3)', async (t) => {
  const d = await fresh('npy');
  const ints = join(d, 'int64.npy');
  await writeFile(ints, npyBytes('<i8', [4, 3], new Uint8Array(new BigInt64Array(12).fill(2n).buffer)));
  const two = join(d, 'two-columns.npy');
  await writeFile(two, npyBytes('<f8', [6, 2], new Uint8Array(new Float64Array(12).fill(0.1).buffer)));
  const text = join(d, 'text.npy');
  await writeFile(text, 'src,dst,weight\n0,1,0.5\n');
  const [a, b, c, e] = await Promise.all([runCli(['mfa', ints]), runCli(['nfd', two]), runCli(['mfa', text]), runCli(['mfa', two, '--json'])]);
  assertFailure(t, a, 3, new RegExp(`^neuromfa: ${esc(ints)}: expected a float64 array of shape \\(E, 3\\).*got dtype <i8 shape \\(4, 3\\)`));
  assertFailure(t, b, 3, new RegExp(`^neuromfa: ${esc(two)}: expected a float64 array of shape \\(E, 3\\).*got dtype <f8 shape \\(6, 2\\)`));
  assertFailure(t, c, 3, new RegExp(`^neuromfa: ${esc(text)}: not a \\.npy file`));
  assertFailure(t, e, 3, new RegExp(`^neuromfa: ${esc(two)}: expected a float64 array`));
});


test('the edge list of the flag cases is itself fine', async (t) => {
  const r = await runCli(['mfa', edgesNpy, '--json', '--threads', '1']);
  t.is(r.code, 0, r.stderr);
  t.is(JSON.parse(r.stdout).nodesSelected, 12);
});

for (const [cmd, value] of [
  ['mfa', '1'],
  ['mfa', '0.5'],
  ['nfd', '1'],
  ['nfd', '0.5'],
  ['analyze', '1'],
] as const) {
  test(`--threshold ${value} is rejected (${cmd})`, async (t) => {
    const target = cmd === 'analyze' ? goodModel : edgesNpy;
    const r = await runCli([cmd, target, '--threshold', value]);
    assertFailure(t, r, 2, new RegExp(`^neuromfa: --threshold must be greater than 1 .*got ${esc(value)}$`));
  });
}

for (const value of ['7', '-1', '1.5']) {
  test(`--decimals ${value} is rejected`, async (t) => {
    const [m, f] = await Promise.all([runCli(['mfa', edgesNpy, '--decimals', value]), runCli(['nfd', edgesNpy, `--decimals=${value}`])]);
    for (const r of [m, f]) assertFailure(t, r, 2, new RegExp(`^neuromfa: --decimals expects an integer from 0 to 6, got "${esc(value)}"$`));
  });
}

test('--layer-sample larger than a layer', async (t) => {
  const d = await fresh('layer-sample');
  const [a, b] = await Promise.all([
    runCli(['analyze', goodModel, '--samples', '0', '--layer-sample', String(H + 1), '--out', join(d, 'report')]),
    runCli(['nin', goodModel, '--sample', '0', '--layer-sample', String(H + 1), '--out', join(d, 'x.npy')]),
  ]);
  for (const r of [a, b]) assertFailure(t, r, 2, new RegExp(`^neuromfa: --layer-sample ${H + 1} is larger than a layer: set \\w+ draws \\d+ of ${H} neurons$`));
  assertOnly(t, d, []);
});

test('no selected node: a clear error, never NaN', async (t) => {
  const d = await fresh('no-node');
  const rows: number[] = [];
  for (let i = 0; i < 30; i++) for (let j = 0; j < 10; j++) rows.push(i, 100 + j, 1 / (2 + j)); // 10 neighbours each: not > 10
  const path = join(d, 'sparse.npy');
  await writeFile(path, npyEdgeBytes(Float64Array.from(rows)));
  const csv = join(d, 'sparse.csv');
  await writeFile(csv, rows.reduce((s, v, k) => s + String(v) + (k % 3 === 2 ? '\n' : ','), ''));
  const [a, b] = await Promise.all([runCli(['mfa', path, '--json']), runCli(['mfa', csv])]);
  for (const r of [a, b]) {
    assertFailure(t, r, 3, /^neuromfa: no node was selected: none has more than 10 neighbours at distance in \(1, 150\]$/);
    t.notRegex(r.stdout + r.stderr, /NaN/);
  }
});

test('fewer than two radii: a clear error, never NaN', async (t) => {
  const d = await fresh('one-radius');
  const rows: number[] = [];
  // Every distance is 1/0.2 = 5, or rounds to it: one radius.
  for (let i = 0; i < 5; i++) for (let j = 0; j < 20; j++) rows.push(i, 100 + j, 0.2 + (j % 2 ? 0.001 : -0.001));
  const path = join(d, 'one-radius.npy');
  await writeFile(path, npyEdgeBytes(Float64Array.from(rows)));
  const r = await runCli(['mfa', path, '--json']);
  assertFailure(t, r, 3, /^neuromfa: only 1 distinct radius among the selected nodes; tau\(q\) needs at least two/);
  t.notRegex(r.stdout + r.stderr, /NaN/);
});

test('an unknown flag is a usage error', async (t) => {
  const [a, b] = await Promise.all([runCli(['mfa', edgesNpy, '--bogus']), runCli(['analyze', goodModel, '--thresold', '100'])]);
  assertFailure(t, a, 2, /^neuromfa: unknown option '--bogus'/);
  assertFailure(t, b, 2, /^neuromfa: unknown option '--thresold'.*--threshold/);
});

test('a missing required flag or argument is a usage error', async (t) => {
  const d = await fresh('required');
  const [a, b, c] = await Promise.all([
    runCli(['nin', goodModel, '--out', join(d, 'x.npy')]),
    runCli(['nin', goodModel, '--sample', '0']),
    runCli(['mfa']),
  ]);
  assertFailure(t, a, 2, /^neuromfa: required option '--sample <s>' not specified/);
  assertFailure(t, b, 2, /^neuromfa: required option '--out <file\.npy>' not specified/);
  assertFailure(t, c, 2, /^neuromfa: missing required argument 'edges'/);
  assertOnly(t, d, []);
});

test('nin --out into a directory that does not exist', async (t) => {
  const d = await fresh('no-dir');
  const out = join(d, 'absent', 'e.npy');
  const r = await runCli(['nin', goodModel, '--sample', '0', '--layer-sample', '8', '--out', out]);
  assertFailure(t, r, 3, new RegExp(`^neuromfa: ${esc(out)}: .*(does not exist|no such)`, 'i'));
  t.false(existsSync(join(d, 'absent')));
  assertOnly(t, d, []);
});

test('nin on a good model writes its .npy and nothing else', async (t) => {
  const d = await fresh('nin-ok');
  const r = await runCli(['nin', goodModel, '--sample', '0', '--layer-sample', '8', '--out', join(d, 'x.npy')]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  assertOnly(t, d, ['x.npy']);
});
