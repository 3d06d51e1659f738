import { InputError, IntegrityError, TransportError } from '../../../proto/errors.js';
import { FileByteSource, type ByteSource } from '../byte-source.js';
import { chooseWeights, parseJson, shardFiles, WEIGHT_FILES, type CheckpointStore, type WeightFiles } from '../checkpoint.js';
import { HttpByteSource } from '../http-byte-source.js';
import { HubCache, isCommit } from './cache.js';
import { CachedByteSource } from './cached-source.js';
import { HubClient, type TreeFile } from './client.js';
import { hfSnapshotFile } from './hf-cache.js';
import { resolveHubOptions, type HubOptions } from './options.js';
import { parseHubRef, refLabel, type HubRef } from './ref.js';

/**
 * One revision of a hub repository, pinned to its commit: the files of its tree, where its
 * weights are, and a CheckpointStore reading them (HF cache, then our range cache, then
 * HTTP). A branch name costs one request per run (GET config.json, whose X-Repo-Commit
 * says where the branch points now); everything else is cached by commit.
 */


export interface WeightFileInfo {
  path: string;
  size: number;
  /** LFS sha256; absent only for a weight file stored in git itself. */
  sha256?: string;
}

export interface Revision {
  ref: HubRef;
  commit: string;
  config: Record<string, unknown>;
  weights: WeightFiles;
  /** The files holding tensors: the single file, or every shard the index names. */
  weightFiles: WeightFileInfo[];
  store: HubStore;
  client: HubClient;
}

export class HubStore implements CheckpointStore {
  private readonly texts = new Map<string, Promise<string>>();

  constructor(
    readonly client: HubClient,
    readonly cache: HubCache,
    readonly ref: HubRef,
    readonly commit: string,
    readonly tree: ReadonlyMap<string, TreeFile>,
  ) {}

  where(file: string): string {
    return `${refLabel(this.ref, this.commit)}/${file}`;
  }

  /** A small file's text: memory, then our cache (keyed by commit), then the hub. */
  text(file: string, missing: string): Promise<string> {
    let p = this.texts.get(file);
    if (!p) {
      p = (async () => {
        if (!this.tree.has(file)) throw new InputError(`${this.where(file)}: ${missing}`);
        const cached = await this.cache.getText(this.ref.repo, this.commit, file);
        if (cached !== undefined) return cached;
        const { text } = await this.client.text(this.ref.repo, this.commit, file);
        await this.cache.putText(this.ref.repo, this.commit, file, text);
        return text;
      })();
      this.texts.set(file, p);
    }
    return p;
  }

  async readJson(file: string, missing: string): Promise<unknown> {
    return parseJson(await this.text(file, missing), this.where(file));
  }

  async open(file: string): Promise<ByteSource> {
    const entry = this.tree.get(file);
    if (!entry) throw new InputError(`${this.where(file)}: no such file in the repository at this commit`);
    const local = await hfSnapshotFile(this.client.opts.hfCacheDir, this.ref.repo, this.commit, file, entry.size);
    if (local) return FileByteSource.open(local);
    const name = this.where(file);
    const blob = this.cache.blob(entry.sha256 ?? `git-${entry.oid}`);
    const { client } = this;
    return new CachedByteSource(name, entry.size, blob, () =>
      new HttpByteSource({
        name,
        size: entry.size,
        url: () => this.locate(file, entry),
        ...(client.opts.rangeFetch ? { fetch: client.opts.rangeFetch } : {}),
        headers: (url) => client.headersFor(url),
        retry: client.opts.retry,
        sleep: client.opts.sleep,
        limit: client.rangeLimit,
        meter: client.meter,
        onRequest: () => client.count(),
        onBytes: (n) => (client.stats.bytesFetched += n),
      }),
    );
  }

  /** The CDN URL of `file`, checked against the tree: the 302 must describe the same blob. */
  private async locate(file: string, entry: TreeFile): Promise<string> {
    const r = await this.client.resolve(this.ref.repo, this.commit, file);
    const where = this.where(file);
    if (r.commit && r.commit !== this.commit) throw new IntegrityError(`${where}: resolved at commit ${r.commit}, not ${this.commit}`);
    if (entry.sha256 && r.sha256 && r.sha256 !== entry.sha256) throw new IntegrityError(`${where}: X-Linked-Etag ${r.sha256} is not the sha256 ${entry.sha256} the tree lists`);
    if (r.size !== undefined && r.size !== entry.size) throw new IntegrityError(`${where}: X-Linked-Size ${r.size} is not the size ${entry.size} the tree lists`);
    return r.url;
  }
}

async function commitAndConfig(client: HubClient, cache: HubCache, ref: HubRef): Promise<{ commit: string; configText: string }> {
  if (isCommit(ref.revision)) {
    const cached = await cache.getText(ref.repo, ref.revision, 'config.json');
    if (cached !== undefined) return { commit: ref.revision, configText: cached };
  }
  const { text, commit } = await client.text(ref.repo, ref.revision, 'config.json');
  if (!commit || !isCommit(commit)) {
    throw new TransportError(`${refLabel(ref)}: the hub gave no X-Repo-Commit for config.json; cannot pin the revision to a commit`);
  }
  await cache.putText(ref.repo, commit, 'config.json', text);
  return { commit, configText: text };
}

async function treeOf(client: HubClient, cache: HubCache, ref: HubRef, commit: string): Promise<TreeFile[]> {
  const cached = await cache.getText(ref.repo, commit, 'tree.json');
  if (cached !== undefined) {
    try {
      return JSON.parse(cached) as TreeFile[];
    } catch {
      // A damaged cache entry: fetch again.
    }
  }
  const files = await client.tree(ref.repo, commit);
  await cache.putText(ref.repo, commit, 'tree.json', JSON.stringify(files));
  return files;
}

async function storeAt(client: HubClient, cache: HubCache, ref: HubRef, commit: string): Promise<HubStore> {
  return new HubStore(client, cache, ref, commit, new Map((await treeOf(client, cache, ref, commit)).map((f) => [f.path, f])));
}

/**
 * The files of `hf://OWNER/NAME@COMMIT`, a revision already pinned (as the names of a hub
 * TensorInfo's sources are): only the tree is needed, from the cache when it holds it.
 */
export async function openPinnedStore(refText: string, options: HubOptions): Promise<HubStore> {
  const ref = parseHubRef(refText);
  const opts = resolveHubOptions(options);
  return storeAt(new HubClient(opts), new HubCache(opts.cacheDir), ref, ref.revision);
}

/** Pins `ref` to a commit and finds its weight files, without reading any weight bytes. */
export async function openRevision(refText: string, options: HubOptions): Promise<Revision> {
  const ref = parseHubRef(refText);
  const opts = resolveHubOptions(options);
  const client = new HubClient(opts);
  const cache = new HubCache(opts.cacheDir);
  const { commit, configText } = await commitAndConfig(client, cache, ref);
  const config = parseJson(configText, `${refLabel(ref, commit)}/config.json`);
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new InputError(`${refLabel(ref, commit)}/config.json: not a JSON object`);
  const store = await storeAt(client, cache, ref, commit);
  const { tree } = store;

  const first = WEIGHT_FILES.find((f) => tree.has(f));
  if (!first) throw new InputError(`${refLabel(ref, commit)}: no ${WEIGHT_FILES.slice(0, -1).join(', ')} or ${WEIGHT_FILES[WEIGHT_FILES.length - 1]} in the repository`);
  const weights = chooseWeights(first);
  const names = weights.index ? await shardFiles(store, weights.index) : [weights.single!];
  const missing = names.filter((n) => !tree.has(n));
  if (missing.length > 0) throw new InputError(`${store.where(weights.index!)}: names shard files missing from the repository: ${missing.join(', ')}`);
  const weightFiles = names.map((n) => {
    const f = tree.get(n)!;
    return { path: n, size: f.size, ...(f.sha256 ? { sha256: f.sha256 } : {}) };
  });
  return { ref, commit, config: config as Record<string, unknown>, weights, weightFiles, store, client };
}
