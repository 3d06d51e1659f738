import fc from 'fast-check';
import { mkdtempSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { layoutFor } from '../../worker/nin/layouts.js';
import { decodeReply, decodeTask, encodeReply, encodeTask } from '../../proto/codec.js';
import { InputError, toWireError } from '../../proto/errors.js';
import type { ShardTask } from '../../proto/shard.js';
import { MemoryByteSource } from '../../worker/io/byte-source.js';
import { parseJson, shardFiles, type CheckpointStore } from '../../worker/io/checkpoint.js';
import { openCsvEdgeStream } from '../../worker/io/csv-edges.js';
import { npyEdgeBytes, readNpyEdges } from '../../worker/io/npy.js';
import { unpickle } from '../../worker/io/pickle.js';
import { readSafetensorsHeader, type TensorInfo } from '../../worker/io/safetensors.js';
import { readTorchBin } from '../../worker/io/torch-bin.js';
import { entryDataOffsets, readZipDirectory } from '../../worker/io/zip.js';
import { f32Bytes, statePickle, torchZip } from '../helpers/torch-zip.js';
import { bytesFrom, utf8 } from './mutate.js';

/**
 * One fuzz target per parser of untrusted input. Each takes bytes (text targets decode them
 * as UTF-8) and either returns or throws; the contract (contract.ts) allows only a
 * NeuromfaError, in bounded time and memory.
 */
export interface FuzzTarget {
  name: string;
  input: fc.Arbitrary<Uint8Array>;
  run(bytes: Uint8Array): Promise<unknown>;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

// ---- safetensors ---------------------------------------------------------------------------

function safetensorsSeed(): Uint8Array {
  const header = utf8(JSON.stringify({ __metadata__: { format: 'pt' }, a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] }, b: { dtype: 'F16', shape: [4], data_offsets: [24, 32] }, e: { dtype: 'BF16', shape: [0, 5], data_offsets: [32, 32] } }));
  const out = new Uint8Array(8 + header.length + 32);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  out.set(f32Bytes([1, -2, 0.5, 0, 3, 4]), 8 + header.length);
  return out;
}

/** A store whose index file holds the fuzzed text; shards are never opened. */
function indexStore(json: string): CheckpointStore {
  return {
    where: (f) => `fuzz/${f}`,
    readJson: async (f) => parseJson(json, `fuzz/${f}`),
    open: () => Promise.reject(new InputError('not opened by this target')),
  };
}

const INDEX_SEED = JSON.stringify({ metadata: { total_size: 64 }, weight_map: { 'a.weight': 'model-00001-of-00002.safetensors', 'b.weight': 'model-00002-of-00002.safetensors' } });

// ---- torch.save zips and pickles -------------------------------------------------------------

const W = Array.from({ length: 12 }, (_, i) => i / 4 - 1);
const tensorsPickle = statePickle([
  { name: 'w', key: '0', storage: 'FloatStorage', numel: 12, offset: 0, shape: [3, 4], strides: [4, 1] },
  { name: 'wt', key: '0', storage: 'FloatStorage', numel: 12, offset: 0, shape: [4, 3], strides: [1, 4] },
  { name: 'h', key: '1', storage: 'HalfStorage', numel: 2, offset: 1, shape: [1], strides: [1] },
]);
const storages = { '0': f32Bytes(W), '1': Uint8Array.of(0, 0x3c, 0, 0xc0) };
const zipSeeds = [torchZip(tensorsPickle, storages), torchZip(tensorsPickle, storages, { descriptor: true }), torchZip(tensorsPickle, storages, { zip64: true, comment: 'c' })];

/** Inert stand-ins for the two globals torch pickles call; anything else is refused. */
const pickleHooks = {
  global: (module: string, name: string) => (module === 'collections' && name === 'OrderedDict' ? () => new Map() : module === 'torch._utils' ? (...a: unknown[]) => a : undefined),
  persistentLoad: (pid: unknown) => pid,
};

// ---- config.json against a fixed tensor table ------------------------------------------------

const NEOX = { architectures: ['GPTNeoXForCausalLM'], model_type: 'gpt_neox', hidden_size: 8, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 32 };

function neoxTensors(): Map<string, TensorInfo> {
  const source = new MemoryByteSource('fuzz.safetensors', new Uint8Array(0));
  const t = new Map<string, TensorInfo>();
  const add = (name: string, shape: number[]) => t.set(name, { name, dtype: 'F32', shape, start: 0, end: 0, source });
  for (let b = 0; b < 2; b++) {
    const at = `gpt_neox.layers.${b}.`;
    add(`${at}attention.query_key_value.weight`, [24, 8]);
    add(`${at}attention.dense.weight`, [8, 8]);
    add(`${at}mlp.dense_h_to_4h.weight`, [32, 8]);
    add(`${at}mlp.dense_4h_to_h.weight`, [8, 32]);
  }
  return t;
}

/** Values a hostile config.json puts where sizes belong. */
const oddValue = fc.oneof(fc.constantFrom(1e7, 1e300, -1, 0, 0.5, 2 ** 31, 2 ** 53, Number.MAX_VALUE, '8', null, true, [], {}), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
const configInput = fc.oneof(
  fc
    .record({ key: fc.constantFrom(...Object.keys(NEOX), 'n_layer', 'head_dim', 'num_key_value_heads', 'n_embd', 'n_inner'), value: oddValue, arch: fc.constantFrom('GPTNeoXForCausalLM', 'LlamaForCausalLM', 'GPT2LMHeadModel', 'BertModel', 'X') })
    .map(({ key, value, arch }) => utf8(JSON.stringify({ ...NEOX, architectures: [arch], [key]: value }))),
  bytesFrom([utf8(JSON.stringify(NEOX)), utf8(`\ufeff${JSON.stringify(NEOX, null, 2)}`)]),
);

// ---- shard messages --------------------------------------------------------------------------

const q = Array.from({ length: 13 }, (_, k) => (k - 6) / 2);
const groupsTask: ShardTask = { id: 1, measure: 'mfa', params: { threshold: 150, decimals: 1, minNeighbors: 2, q }, input: { kind: 'groups', weights: Float64Array.of(0.5, 0.01, 0.2, 0, NaN, 0.03), stride: 1, offsets: Uint32Array.of(0, 3, 6) } };
const matrixTask: ShardTask = {
  id: 9,
  measure: 'mfa',
  params: { threshold: 99.5, decimals: 0, minNeighbors: 10, q },
  input: { kind: 'matrix', inputs: 16, parts: [{ tensor: 'w', file: 'm/model.safetensors', dataStart: 128, dtype: 'F16', rows: 24, transposed: false }], colStart: 2, colEnd: 9, inline: [Uint8Array.of(1, 2, 3, 4)] },
};
const nfdTask: ShardTask = { id: 2, measure: 'nfd', params: { threshold: 200, decimals: 2 }, input: { kind: 'groups', weights: Float64Array.of(0.1, 0.2), stride: 1, offsets: Uint32Array.of(0, 2) } };
const replies = [
  encodeReply({ ok: true, result: { id: 3, measure: 'mfa', backend: 'f64', selected: 2, present: Int32Array.of(2, 5), sums: Float64Array.of(1, 2, 3, 4, 5, 6), nodes: 4, edges: 9, skippedNonFinite: 1, bytesRead: 12, seconds: 0.1 } }),
  encodeReply({ ok: true, result: { id: 4, measure: 'nfd', backend: 'f64', values: Float64Array.of(1.5, 0), nodes: 2, edges: 9, skippedNonFinite: 0, bytesRead: 0, seconds: 0 } }),
  encodeReply({ ok: false, error: toWireError(new InputError('x: bad')) }),
];

// ---- files on disk: .npy and CSV (their readers take a path) ----------------------------------

let scratch: string | undefined;
let fileNo = 0;
/** Writes `bytes` to a fresh file in a scratch directory, runs `read` on it, removes it. */
async function onDisk<T>(ext: string, bytes: Uint8Array, read: (path: string) => Promise<T>): Promise<T> {
  scratch ??= mkdtempSync(join(tmpdir(), 'neuromfa-fuzz-'));
  const path = join(scratch, `${fileNo++}${ext}`);
  await writeFile(path, bytes);
  try {
    return await read(path);
  } finally {
    await rm(path, { force: true });
  }
}

/** Removes the scratch directory of the file targets. */
export async function cleanupTargets(): Promise<void> {
  if (scratch) await rm(scratch, { recursive: true, force: true });
  scratch = undefined;
}

const npySeed = npyEdgeBytes(Float64Array.of(0, 1, 0.5, 0, 2, -0.25, 1, 2, 0.125));
const CSV_SEED = 'src,dst,weight\n0,1,0.5\n0,2,-0.25\n1,2,1e-3\n';

export const TARGETS: FuzzTarget[] = [
  { name: 'safetensors-header', input: bytesFrom([safetensorsSeed()]), run: (b) => readSafetensorsHeader(new MemoryByteSource('fuzz.safetensors', b)) },
  { name: 'safetensors-index', input: bytesFrom([utf8(INDEX_SEED)]), run: (b) => shardFiles(indexStore(text(b)), 'model.safetensors.index.json') },
  {
    name: 'zip-directory',
    input: bytesFrom(zipSeeds),
    run: async (b) => {
      const zip = await readZipDirectory(new MemoryByteSource('fuzz.bin', b));
      return entryDataOffsets(zip, [...zip.entries.values()]);
    },
  },
  { name: 'torch-bin', input: bytesFrom(zipSeeds), run: (b) => readTorchBin(new MemoryByteSource('fuzz.bin', b)) },
  { name: 'pickle', input: bytesFrom([tensorsPickle]), run: async (b) => unpickle(b, pickleHooks, 'fuzz.bin: data.pkl') },
  { name: 'config-json', input: configInput, run: async (b) => layoutFor('fuzz', parseJson(text(b), 'fuzz/config.json') as Record<string, unknown>, neoxTensors(), 4) },
  { name: 'shard-task', input: bytesFrom([encodeTask(groupsTask), encodeTask(matrixTask), encodeTask(nfdTask)]), run: async (b) => decodeTask(b) },
  { name: 'shard-reply', input: bytesFrom(replies), run: async (b) => decodeReply(b) },
  { name: 'npy-header', input: bytesFrom([npySeed]), run: (b) => onDisk('.npy', b, readNpyEdges) },
  {
    name: 'csv-line',
    input: bytesFrom([utf8(CSV_SEED), utf8('0,1,0.5\r\n3,4,2\n')]),
    run: (b) =>
      onDisk('.csv', b, async (path) => {
        const stream = await openCsvEdgeStream(path);
        try {
          return await stream.scan(() => {});
        } finally {
          await stream.close();
        }
      }),
  },
];
