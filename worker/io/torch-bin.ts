import { crc32 } from 'node:zlib';
import { InputError, IntegrityError } from '../../proto/errors.js';
import { quote, shown } from '../../proto/limits.js';
import type { ByteSource } from './byte-source.js';
import { bytesPerElement } from './dtype.js';
import { unpickle } from './pickle.js';
import { isContiguous, type TensorInfo } from './safetensors.js';
import { entryDataOffsets, readZipDirectory, requireStored, type ZipDirectory, type ZipEntry } from './zip.js';

/**
 * PyTorch `.bin` checkpoints (torch.save ≥ 1.6, the zip format; pythia's step branches ship
 * them): `<archive>/data.pkl` names every tensor as (storage, offset, size, stride), and
 * storage `k` is the stored zip entry `<archive>/data/k`. Only the zip directory, data.pkl
 * and the local headers are read here; tensor bytes are read later through TensorInfo,
 * exactly as for safetensors.
 */

/**
 * torch's storage classes, as dtype tags only: they are never constructed. The non-float
 * ones are here because real state dicts hold them (GPT-NeoX's bool `attention.bias`
 * buffer in pythia's .bin files); requireFloatTensor refuses them if a layout asks.
 */
const STORAGE_DTYPES: ReadonlyMap<string, string> = new Map([
  ['FloatStorage', 'F32'],
  ['HalfStorage', 'F16'],
  ['BFloat16Storage', 'BF16'],
  ['DoubleStorage', 'F64'],
  ['LongStorage', 'I64'],
  ['IntStorage', 'I32'],
  ['ShortStorage', 'I16'],
  ['CharStorage', 'I8'],
  ['ByteStorage', 'U8'],
  ['BoolStorage', 'BOOL'],
  ['UntypedStorage', 'U8'],
]);

/** 0x1950a86a20f9469cfc6c, the legacy format's magic, as pickle PROTO 2 + LONG1 writes it. */
const LEGACY_MAGIC = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);

class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: string,
    readonly numel: number,
  ) {}
}
class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly strides: number[],
  ) {}
}

/** torch tensors have at most 64 dimensions; more is not a tensor (and would not fit a message). */
const MAX_RANK = 64;

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function hooksFor(where: string) {
  const fail = (msg: string): never => {
    throw new InputError(`${where}: ${msg}`);
  };
  const counts = (v: unknown, what: string): number[] => {
    if (!Array.isArray(v) || !v.every(isCount)) fail(`${what} is not a tuple of non-negative integers`);
    if ((v as number[]).length > MAX_RANK) fail(`${what} has ${(v as number[]).length} dimensions; at most ${MAX_RANK}`);
    return [...(v as number[])];
  };
  return {
    global(module: string, name: string) {
      if (module === 'collections' && name === 'OrderedDict') {
        return (...args: unknown[]) => {
          if (args.length === 0) return new Map();
          // OrderedDict(list_of_pairs): torch writes the empty form, but the pair form is inert too.
          if (args.length === 1 && Array.isArray(args[0]) && args[0].every((p) => Array.isArray(p) && p.length === 2)) return new Map(args[0] as Array<[unknown, unknown]>);
          return fail('collections.OrderedDict called with unexpected arguments');
        };
      }
      if (module === 'torch._utils' && name === '_rebuild_tensor_v2') {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        return (...args: unknown[]) => {
          const [storage, offset, size, stride] = args;
          if (!(storage instanceof StorageRef)) return fail('_rebuild_tensor_v2 without a storage');
          if (!isCount(offset)) return fail('_rebuild_tensor_v2 with an invalid storage offset');
          const shape = counts(size, 'tensor size');
          const strides = counts(stride, 'tensor stride');
          if (shape.length !== strides.length) fail(`tensor size [${shape}] and stride [${strides}] differ in rank`);
          return new TensorRef(storage, offset, shape, strides);
        };
      }
      const dtype = module === 'torch' ? STORAGE_DTYPES.get(name) : undefined;
      return dtype ? () => fail(`torch.${name} called as a function`) : undefined;
    },
    persistentLoad(pid: unknown) {
      // ('storage', <storage class>, key, location, numel), as torch.serialization writes it.
      if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') return fail('unsupported persistent id (expected a torch storage)');
      const [, type, key, , numel] = pid;
      const global = type as { module?: string; name?: string };
      const dtype = global?.module === 'torch' ? STORAGE_DTYPES.get(String(global.name)) : undefined;
      if (!dtype) return fail('persistent id names no torch storage type');
      if (typeof key !== 'string' || !/^[0-9A-Za-z_]+$/.test(key)) return fail(`unsafe storage key ${quote(String(key))}`);
      if (!isCount(numel)) return fail(`storage ${key}: invalid element count`);
      return new StorageRef(key, dtype!, numel);
    },
  };
}

async function refuseLegacy(source: ByteSource): Promise<void> {
  const head = await source.read(0, Math.min(source.size, LEGACY_MAGIC.length));
  if (head.length === LEGACY_MAGIC.length && head.every((b, i) => b === LEGACY_MAGIC[i])) {
    throw new InputError(`${source.name}: a legacy (pre-1.6, non-zip) torch.save file; re-save it with torch ≥ 1.6 or convert it to safetensors`);
  }
}

/** The single `<archive>/data.pkl` entry and its archive prefix. */
function findPickle(zip: ZipDirectory): { prefix: string; entry: ZipEntry } {
  const found = [...zip.entries.values()].filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (found.length !== 1) {
    throw new InputError(`${zip.source.name}: not a torch.save checkpoint (${found.length === 0 ? 'no' : 'more than one'} <archive>/data.pkl entry)`);
  }
  return { prefix: found[0].name.slice(0, -'data.pkl'.length), entry: found[0] };
}

/** The bytes of small entries (data.pkl, byteorder); their local headers are read together. */
async function readEntries(zip: ZipDirectory, entries: ZipEntry[]): Promise<Uint8Array[]> {
  for (const e of entries) requireStored(zip, e);
  const at = await entryDataOffsets(zip, entries);
  return Promise.all(entries.map((e) => zip.source.read(at.get(e.name)!, at.get(e.name)! + e.size)));
}

/** Bytes element [0, ...] to the last element span, in elements (1 + Σ (size-1)·stride). */
function spanOf(shape: number[], strides: number[]): number {
  if (shape.some((d) => d === 0)) return 0;
  return 1 + shape.reduce((a, d, i) => a + (d - 1) * strides[i], 0);
}

/** The zip entry (storage) each tensor read from a .bin lies in, for verifyStorageCrcs. */
interface StoredEntry {
  source: ByteSource;
  entry: ZipEntry;
  dataStart: number;
}
const storageOf = new WeakMap<TensorInfo, StoredEntry>();

/** Bytes per read while checking a CRC: large enough to amortise, small enough to stay flat. */
const CRC_BLOCK_BYTES = 4 << 20;

/**
 * Checks the zip CRC-32 of every storage entry holding one of `tensors` (those read from a
 * .bin; others are skipped), each read once, whole. Only worth it where the run reads those
 * bytes anyway (--full): a sampled read touches a few rows and cannot check a CRC.
 */
export async function verifyStorageCrcs(tensors: Iterable<TensorInfo>): Promise<void> {
  const entries = new Map<string, StoredEntry>();
  for (const t of tensors) {
    const s = storageOf.get(t);
    if (s) entries.set(`${s.source.name}\0${s.entry.name}`, s);
  }
  let buffer = new Uint8Array(0);
  for (const { source, entry, dataStart } of entries.values()) {
    let crc = 0;
    for (let at = 0; at < entry.size; at += CRC_BLOCK_BYTES) {
      const n = Math.min(CRC_BLOCK_BYTES, entry.size - at);
      if (buffer.length < n) buffer = new Uint8Array(n);
      crc = crc32(await source.read(dataStart + at, dataStart + at + n, buffer.subarray(0, n)), crc);
    }
    if (crc !== entry.crc) {
      const hex = (v: number) => v.toString(16).padStart(8, '0');
      throw new IntegrityError(`${source.name}: zip entry ${shown(entry.name)} has CRC-32 ${hex(crc)} but the archive records ${hex(entry.crc)}: the file is corrupt`);
    }
  }
}

/** Every tensor of one torch.save zip, addressed by absolute file offsets. */
export async function readTorchBin(source: ByteSource): Promise<Map<string, TensorInfo>> {
  await refuseLegacy(source);
  const zip = await readZipDirectory(source);
  const { prefix, entry } = findPickle(zip);
  const order = zip.entries.get(`${prefix}byteorder`);
  const [pickle, orderBytes] = await readEntries(zip, order ? [entry, order] : [entry]);
  // Files written before torch recorded byteorder are little-endian (every platform it shipped on).
  const byteorder = orderBytes ? new TextDecoder().decode(orderBytes) : 'little';
  if (byteorder !== 'little') throw new InputError(`${source.name}: byteorder is ${quote(byteorder)}; only little-endian checkpoints are supported`);
  const where = `${source.name}: ${shown(entry.name)}`;
  const root = unpickle(pickle, hooksFor(where), where);
  if (!(root instanceof Map)) throw new InputError(`${where}: not a state dict (the pickle holds no dict)`);

  const refs = new Map<string, TensorRef>();
  for (const [name, value] of root) {
    // Non-tensor entries (a `_metadata` dict, plain numbers) are not weights.
    if (typeof name === 'string' && value instanceof TensorRef) refs.set(name, value);
  }
  const storages = new Map<string, ZipEntry>();
  for (const [name, ref] of refs) {
    const e = zip.entries.get(`${prefix}data/${ref.storage.key}`);
    if (!e) throw new InputError(`${source.name}: tensor ${shown(name)} needs storage entry ${shown(`${prefix}data/${ref.storage.key}`)}, which is missing`);
    requireStored(zip, e);
    storages.set(e.name, e);
  }
  const offsets = await entryDataOffsets(zip, [...storages.values()]);

  const tensors = new Map<string, TensorInfo>();
  for (const [name, ref] of refs) {
    const { storage } = ref;
    const e = storages.get(`${prefix}data/${storage.key}`)!;
    const size = bytesPerElement(storage.dtype)!;
    if (e.size < storage.numel * size) {
      throw new InputError(`${source.name}: storage ${storage.key} holds ${e.size} bytes but ${storage.numel} × ${storage.dtype} needs ${storage.numel * size}`);
    }
    const span = spanOf(ref.shape, ref.strides);
    if (span > 0 && ref.offset + span > storage.numel) {
      throw new InputError(`${source.name}: tensor ${shown(name)} (offset ${ref.offset}, size [${ref.shape}], stride [${ref.strides}]) reaches past its storage of ${storage.numel} elements`);
    }
    const start = offsets.get(e.name)! + ref.offset * size;
    const info: TensorInfo = { name, dtype: storage.dtype, shape: ref.shape, start, end: start + span * size, source };
    if (!isContiguous({ shape: ref.shape, strides: ref.strides })) info.strides = ref.strides;
    storageOf.set(info, { source, entry: e, dataStart: offsets.get(e.name)! });
    tensors.set(name, info);
  }
  return tensors;
}
