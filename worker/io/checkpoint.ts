import { stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, win32 } from 'node:path';
import { InputError } from '../../proto/errors.js';
import { MAX_JSON_FILE_BYTES } from '../../proto/limits.js';
import { FileByteSource, type ByteSource } from './byte-source.js';
import { readRegularFile } from './open-regular.js';
import type { HubOptions } from './hub/options.js';
import { readSafetensorsHeader, type TensorInfo } from './safetensors.js';
// torch-bin (with its zip and pickle readers) loads only for a .bin checkpoint: most are safetensors.
const torchBin = () => import('./torch-bin.js');
import { isHubRef } from './hub/ref.js';

/**
 * A Hugging Face checkpoint as `transformers.save_pretrained` writes it: config.json beside
 * model.safetensors, model.safetensors.index.json and its shards, or the PyTorch
 * pytorch_model.bin / pytorch_model.bin.index.json equivalents. Only headers (and a .bin's
 * zip directory and data.pkl) are read here; tensor bytes are read later, row by row,
 * through each TensorInfo's source. The folder may be local or a hub revision (hub/).
 */
export interface Checkpoint {
  path: string;
  config: Record<string, unknown>;
  tensors: Map<string, TensorInfo>;
  /** The weight files, in the order opened. */
  files: string[];
  /** Total size of those files, the denominator of the bytes-read fraction. */
  fileBytes: number;
  bytesRead(): number;
  close(): Promise<void>;
  /** Hub checkpoints: the commit the revision resolved to. */
  commit?: string;
  /** Hub checkpoints: sha256 of each weight file, by file name in the repository. */
  sha256?: Record<string, string>;
  /** Hub checkpoints: HTTP requests made so far (live counters). */
  stats?: { requests: number; bytesFetched: number; link?: { rttMs: number; mbPerSec: number } };
  /**
   * Called once before a --full run with the tensors it reads whole. Hub checkpoints download
   * them into the range cache in large requests, so --full shards, which reopen the file by
   * name in other threads, read them from disk. Local .bin checkpoints check the zip CRC-32
   * of the entries holding them (an IntegrityError if one differs).
   */
  warm?(tensors: Iterable<string>): Promise<void>;
}

/** Weight files in order of preference (as the hub issue and transformers choose them). */
export const WEIGHT_FILES = ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin', 'pytorch_model.bin.index.json'] as const;

/** The weights of a checkpoint folder: one file, or an index naming shards (names in the folder). */
export interface WeightFiles {
  single?: string;
  index?: string;
}

/** Where a checkpoint's files are read from: a local folder or a hub revision. */
export interface CheckpointStore {
  /** How `file` is named in messages and in Checkpoint.files. */
  where(file: string): string;
  /** Parsed JSON of `file`; `missing` completes the message when it does not exist. */
  readJson(file: string, missing: string): Promise<unknown>;
  open(file: string): Promise<ByteSource>;
}

export interface OpenCheckpointOptions {
  /** For `hf://OWNER/NAME[@REV]` paths; unset fields come from the environment. */
  hub?: HubOptions;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

async function kind(path: string): Promise<'file' | 'dir' | undefined> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? 'dir' : 'file';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new InputError(`${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Parses JSON text read from `where`, with the file named in the message, on one line (V8
 * quotes the text around the error, newlines and all). A leading UTF-8 byte-order mark is
 * skipped: it carries no data (editors on Windows add it), and the hub's text decoding drops
 * it anyway, so a local file and the same file on the hub read alike.
 */
export function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    throw new InputError(`${where}: not valid JSON (${oneLine((err as Error).message)})`, { cause: err });
  }
}

/** An error message of a parser, cut and with its line breaks escaped. */
const oneLine = (m: string) => (m.length > 200 ? `${m.slice(0, 200)}…` : m).replace(/[\r\n\u2028\u2029]/g, (c) => JSON.stringify(c).slice(1, -1));

/** Shard names come from a downloaded file: never let one point outside the checkpoint folder. */
export function isSafeShardName(name: string): boolean {
  return name !== '' && !isAbsolute(name) && !win32.isAbsolute(name) && !/[/\\]/.test(name) && !name.includes('..');
}

/** A local folder; `given` keeps the path exactly as the user typed it for a file argument. */
class LocalStore implements CheckpointStore {
  constructor(
    private readonly dir: string,
    private readonly given?: { file: string; path: string },
  ) {}
  where(file: string): string {
    return this.given?.file === file ? this.given.path : join(this.dir, file);
  }
  async readJson(file: string, missing: string): Promise<unknown> {
    const path = this.where(file);
    let bytes: Uint8Array;
    try {
      bytes = await readRegularFile(path, MAX_JSON_FILE_BYTES);
    } catch (err) {
      if ((err as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT') throw new InputError(`${path}: ${missing}`, { cause: err });
      throw err;
    }
    return parseJson(new TextDecoder().decode(bytes), path);
  }
  open(file: string): Promise<ByteSource> {
    return FileByteSource.open(this.where(file));
  }
}

/** Where the weights are: one file, or an index naming shards. */
async function locate(path: string): Promise<{ store: LocalStore; weights: WeightFiles }> {
  const k = await kind(path);
  if (k === undefined) throw new InputError(`${path}: no such file or directory`);
  if (k === 'file') {
    const file = basename(path);
    const store = new LocalStore(dirname(path), { file, path });
    return { store, weights: chooseWeights(file) };
  }
  const store = new LocalStore(path);
  for (const file of WEIGHT_FILES) {
    if ((await kind(join(path, file))) === 'file') return { store, weights: chooseWeights(file) };
  }
  throw new InputError(`${path}: no ${WEIGHT_FILES.slice(0, -1).join(', ')} or ${WEIGHT_FILES[WEIGHT_FILES.length - 1]} in this directory`);
}

export const chooseWeights = (file: string): WeightFiles => (file.endsWith('.index.json') ? { index: file } : { single: file });

/** weight_map: tensor name → shard file name, validated before any shard is opened. */
async function readWeightMap(store: CheckpointStore, index: string): Promise<Map<string, string>> {
  const json = await store.readJson(index, 'no such file');
  const wm = isObject(json) ? json.weight_map : undefined;
  if (!isObject(wm)) throw new InputError(`${store.where(index)}: no "weight_map" object`);
  const out = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(wm)) {
    if (typeof shard !== 'string' || !isSafeShardName(shard)) {
      throw new InputError(`${store.where(index)}: unsafe shard file name ${JSON.stringify(shard)} for tensor ${tensor}`);
    }
    out.set(tensor, shard);
  }
  return out;
}

/** The shard files an index names, sorted (the order they are opened in). */
export async function shardFiles(store: CheckpointStore, index: string): Promise<string[]> {
  return shardNames(await readWeightMap(store, index));
}

/** The distinct shard files a weight_map names, sorted: the order files[] keeps across runs. */
const shardNames = (weightMap: Map<string, string>) => [...new Set(weightMap.values())].sort();

/** The tensors of one weight file, by its format (a torch.save zip or safetensors). */
export async function readWeightFile(file: string, source: ByteSource): Promise<Map<string, TensorInfo>> {
  return file.endsWith('.bin') ? (await torchBin()).readTorchBin(source) : (await readSafetensorsHeader(source)).tensors;
}

export async function readConfig(store: CheckpointStore): Promise<Record<string, unknown>> {
  const config = await store.readJson('config.json', 'missing (needed to choose the NIN layout)');
  if (!isObject(config)) throw new InputError(`${store.where('config.json')}: not a JSON object`);
  return config;
}

/** Opens the weight files of `store` and builds the Checkpoint; closes what it opened on failure. */
export async function assembleCheckpoint(path: string, store: CheckpointStore, weights: WeightFiles, config: Record<string, unknown>): Promise<Checkpoint> {
  const weightMap = weights.index ? await readWeightMap(store, weights.index) : undefined;
  const sources: ByteSource[] = [];
  try {
    const tensors = new Map<string, TensorInfo>();
    if (weights.single) {
      const src = await store.open(weights.single);
      sources.push(src);
      for (const [name, t] of await readWeightFile(weights.single, src)) tensors.set(name, t);
    } else {
      // Each shard opened once.
      const shards = new Map<string, Map<string, TensorInfo>>();
      for (const shard of shardNames(weightMap!)) {
        const src = await store.open(shard);
        sources.push(src);
        shards.set(shard, await readWeightFile(shard, src));
      }
      // The weight_map is authoritative (as in transformers); shard tensors it omits are ignored.
      for (const [name, shard] of weightMap!) {
        const t = shards.get(shard)!.get(name);
        if (!t) throw new InputError(`${store.where(weights.index!)}: tensor ${name} is mapped to ${shard}, but ${shard} does not contain it`);
        tensors.set(name, t);
      }
    }
    return {
      path,
      config,
      tensors,
      files: sources.map((s) => s.name),
      fileBytes: sources.reduce((n, s) => n + s.size, 0),
      bytesRead: () => sources.reduce((n, s) => n + s.bytesRead, 0),
      close: async () => {
        await Promise.all(sources.map((s) => s.close()));
      },
      warm: async (names) => (await torchBin()).verifyStorageCrcs([...names].flatMap((n) => tensors.get(n) ?? [])),
    };
  } catch (err) {
    await Promise.allSettled(sources.map((s) => s.close()));
    throw err;
  }
}

export async function openCheckpoint(path: string, opts: OpenCheckpointOptions = {}): Promise<Checkpoint> {
  if (isHubRef(path)) {
    // Loaded on demand: local runs never pay for the HTTP client.
    const { openHubCheckpoint } = await import('./hub/open-hub-checkpoint.js');
    return openHubCheckpoint(path, opts.hub ?? {});
  }
  const { store, weights } = await locate(path);
  const config = await readConfig(store);
  return assembleCheckpoint(path, store, weights, config);
}
