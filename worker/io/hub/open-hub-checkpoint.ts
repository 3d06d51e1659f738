import { UsageError } from '../../../proto/errors.js';
import type { ByteSource } from '../byte-source.js';
import { assembleCheckpoint, type Checkpoint } from '../checkpoint.js';
import { verifyStorageCrcs } from '../torch-bin.js';
import type { HubStats } from './client.js';
import type { HubOptions } from './options.js';
import { openPinnedStore, openRevision, type HubStore, type WeightFileInfo } from './revision.js';
import { warmRangeCache } from './warm-cache.js';

/** A checkpoint read from the hub: the local Checkpoint shape plus where it came from. */
export interface HubCheckpoint extends Checkpoint {
  /** The commit the revision pointed at when opened. */
  commit: string;
  /** sha256 of every weight file (LFS), by file name. */
  sha256: Record<string, string>;
  /** Live counters of the HTTP requests and bytes this checkpoint cost. */
  stats: HubStats;
}

/**
 * `hf://OWNER/NAME[@REV]` as a Checkpoint. Headers are read now (through the caches);
 * tensor rows later, by range, through each TensorInfo's source.
 */
export async function openHubCheckpoint(ref: string, options: HubOptions = {}): Promise<HubCheckpoint> {
  const rev = await openRevision(ref, options);
  const ckpt = await assembleCheckpoint(ref, rev.store, rev.weights, rev.config);
  const sha256: Record<string, string> = {};
  for (const f of rev.weightFiles) if (f.sha256) sha256[f.path] = f.sha256;
  const warm = async (tensors: Iterable<string>) => {
    const wanted = [...new Set(tensors)].map((n) => ckpt.tensors.get(n)).filter((t) => t !== undefined);
    await warmRangeCache(wanted.map((t) => ({ source: t.source, start: t.start, end: t.end })));
    // Every byte of the .bin entries is read anyway: check their CRC-32 (now from the cache).
    await verifyStorageCrcs(wanted);
  };
  return { ...ckpt, commit: rev.commit, sha256, stats: rev.client.stats, warm };
}

/** What a revision holds, without reading weight bytes: the commit, config and each weight file's sha256. */
export async function describeRevision(
  ref: string,
  options: HubOptions = {},
): Promise<{ commit: string; config: Record<string, unknown>; files: WeightFileInfo[]; stats: HubStats }> {
  const rev = await openRevision(ref, options);
  return { commit: rev.commit, config: rev.config, files: rev.weightFiles, stats: rev.client.stats };
}

/** Stores of pinned revisions opened with the environment's settings, one per thread. */
const pinned = new Map<string, Promise<HubStore>>();

/**
 * One file by the name a remote TensorInfo's source carries (`hf://OWNER/NAME@COMMIT/FILE`),
 * for code that reopens sources by name in another thread (the --full shards). Without
 * `options` the revision's store is opened once and kept: every shard of a run opens its
 * files here, and they share one client (its request bound and concurrency limit).
 */
export async function openHubFile(name: string, options?: HubOptions): Promise<ByteSource> {
  const m = /^(hf:\/\/[^@]+@[0-9a-f]{40})\/(.+)$/.exec(name);
  if (!m) throw new UsageError(`${name}: not a pinned hub file name (hf://OWNER/NAME@COMMIT/FILE)`);
  if (options) return (await openPinnedStore(m[1], options)).open(m[2]);
  let store = pinned.get(m[1]);
  if (!store) {
    store = openPinnedStore(m[1], {});
    pinned.set(m[1], store);
    // A failure (the hub unreachable) is not kept: the next shard tries again.
    store.catch(() => pinned.delete(m[1]));
  }
  return (await store).open(m[2]);
}
