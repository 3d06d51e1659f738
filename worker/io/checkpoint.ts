import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, win32 } from 'node:path';
import { InputError } from '../../proto/errors.js';
import { FileByteSource, type ByteSource } from './byte-source.js';
import { readSafetensorsHeader, type TensorInfo } from './safetensors.js';

/**
 * A Hugging Face checkpoint as `transformers.save_pretrained` writes it: config.json beside
 * model.safetensors, or beside model.safetensors.index.json and its shards. Only headers are
 * read here; tensor bytes are read later, row by row, through each TensorInfo's source.
 */
export interface Checkpoint {
  path: string;
  config: Record<string, unknown>;
  tensors: Map<string, TensorInfo>;
  /** The safetensors files, in the order opened. */
  files: string[];
  /** Total size of those files, the denominator of the bytes-read fraction. */
  fileBytes: number;
  bytesRead(): number;
  close(): Promise<void>;
}

const SINGLE = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';

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

async function readJson(path: string, missing: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`${path}: ${code === 'ENOENT' ? missing : (err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`${path}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Shard names come from a downloaded file: never let one point outside the checkpoint folder. */
function isSafeShardName(name: string): boolean {
  return name !== '' && !isAbsolute(name) && !win32.isAbsolute(name) && !/[/\\]/.test(name) && !name.includes('..');
}

/** Where the weights are: one file, or an index naming shards. */
async function locate(path: string): Promise<{ dir: string; single?: string; index?: string }> {
  const k = await kind(path);
  if (k === undefined) throw new InputError(`${path}: no such file or directory`);
  if (k === 'file') {
    if (path.endsWith('.bin')) throw new InputError(`${path}: PyTorch .bin checkpoints are not supported yet; use safetensors`);
    return path.endsWith('.index.json') ? { dir: dirname(path), index: path } : { dir: dirname(path), single: path };
  }
  if ((await kind(join(path, SINGLE))) === 'file') return { dir: path, single: join(path, SINGLE) };
  if ((await kind(join(path, INDEX))) === 'file') return { dir: path, index: join(path, INDEX) };
  for (const bin of ['pytorch_model.bin', 'pytorch_model.bin.index.json']) {
    if ((await kind(join(path, bin))) === 'file') {
      throw new InputError(`${path}: only a PyTorch .bin checkpoint (${bin}) is here; .bin checkpoints are not supported yet`);
    }
  }
  throw new InputError(`${path}: no ${SINGLE} or ${INDEX} in this directory`);
}

/** weight_map: tensor name → shard file name, validated before any shard is opened. */
async function readWeightMap(index: string): Promise<Map<string, string>> {
  const json = await readJson(index, 'no such file');
  const wm = isObject(json) ? json.weight_map : undefined;
  if (!isObject(wm)) throw new InputError(`${index}: no "weight_map" object`);
  const out = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(wm)) {
    if (typeof shard !== 'string' || !isSafeShardName(shard)) {
      throw new InputError(`${index}: unsafe shard file name ${JSON.stringify(shard)} for tensor ${tensor}`);
    }
    out.set(tensor, shard);
  }
  return out;
}

export async function openCheckpoint(path: string): Promise<Checkpoint> {
  const where = await locate(path);
  const configPath = join(where.dir, 'config.json');
  const config = await readJson(configPath, 'missing (needed to choose the NIN layout)');
  if (!isObject(config)) throw new InputError(`${configPath}: not a JSON object`);
  const weightMap = where.index ? await readWeightMap(where.index) : undefined;

  const sources: ByteSource[] = [];
  try {
    const tensors = new Map<string, TensorInfo>();
    if (where.single) {
      const src = await FileByteSource.open(where.single);
      sources.push(src);
      for (const [name, t] of (await readSafetensorsHeader(src)).tensors) tensors.set(name, t);
    } else {
      // Each shard opened once, in sorted order so files[] is stable across runs.
      const shards = new Map<string, Map<string, TensorInfo>>();
      for (const shard of [...new Set(weightMap!.values())].sort()) {
        const src = await FileByteSource.open(join(where.dir, shard));
        sources.push(src);
        shards.set(shard, (await readSafetensorsHeader(src)).tensors);
      }
      // The weight_map is authoritative (as in transformers); shard tensors it omits are ignored.
      for (const [name, shard] of weightMap!) {
        const t = shards.get(shard)!.get(name);
        if (!t) throw new InputError(`${where.index}: tensor ${name} is mapped to ${shard}, but ${shard} does not contain it`);
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
    };
  } catch (err) {
    await Promise.allSettled(sources.map((s) => s.close()));
    throw err;
  }
}
