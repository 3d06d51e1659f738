import { createHash } from 'node:crypto';
import { InputError, UsageError } from '../../proto/errors.js';
import { inLanes } from '../../worker/io/in-lanes.js';
import type { ShardBackend, TextCache } from '../../worker/backends/shard-backend.js';
import type { RunListener } from '../run/run-shards.js';
import { analyzeModel, openForAnalysis, type AnalyzeOptions, type AnalyzeReport, type OpenedModel, type SampleResult } from './model-analysis.js';
import { isHubRef } from '../../worker/io/hub/ref.js';
import { analyseOnWorkers } from './series-on-workers.js';

/**
 * An emergence series checked before E is computed. Step branches on the hub have served
 * another step's weights (EleutherAI/pythia #195, #205, #206; allenai/OLMo #915), so every
 * hub revision is pinned to its commit and its weight files' sha256 (tree API, no
 * download), and every analysed checkpoint gets a hash of the sampled bytes it read.
 * Revisions sharing a weight file (even one shard of several) or sampled bytes are reported
 * and, by default, only the first of them enters E. Missing revisions are listed, never
 * skipped silently. Hub results are cached per (commit, file sha256, sample, parameters),
 * so extending a series computes only its new steps.
 */

export interface SeriesMember {
  label: string;
  /** A local checkpoint path or `hf://OWNER/NAME@REVISION`. */
  model: string;
}

export interface DuplicateGroup {
  labels: string[];
  reason: 'file-sha256' | 'sampled-bytes';
  /** main and the last step branch; GPT-NeoX step0 and step1. */
  expected: boolean;
  /** Why an expected duplicate is expected. */
  note?: string;
  /** file-sha256: the weight files the revisions share. */
  files?: string[];
}

export interface SeriesIntegrity {
  checkpoints: Array<{ label: string; model: string; commit?: string; sha256?: Record<string, string>; sampledSha256?: string }>;
  duplicates: DuplicateGroup[];
  /** Labels left out of E (duplicates after the first of their group). */
  excluded: string[];
  missing: Array<{ label: string; model: string; reason: string }>;
}

export interface AnalysedMember extends SeriesMember {
  commit?: string;
  sha256?: Record<string, string>;
  layout: string;
  architecture: string;
  samples: SampleResult[];
  /** The analysis of the samples not in the result cache; null when all were. */
  stats: AnalyzeReport['stats'] | null;
  cachedSamples: number;
}

export interface SeriesResult {
  /** The members that enter E, in series order. */
  members: AnalysedMember[];
  integrity: SeriesIntegrity;
  /** One line per finding, for stderr before the curve. */
  warnings: string[];
}

export interface Identity {
  repo: string;
  revision: string;
  commit: string;
  sha256: Record<string, string>;
  gptNeox: boolean;
  /** Bytes of its weight files. */
  fileBytes: number;
}

const hub = () => import('../../worker/io/hub/index.js');
const MAIN_NOTE = 'main points at the last training step';
const STEP0_NOTE = 'GPT-NeoX step0 equals step1: the first step runs at learning rate 0';
/** Revisions described at once (each costs a config.json request and, uncached, the tree). */
const DESCRIBE_CONCURRENCY = 8;

/** `--revisions all` (every step<N> branch, numeric order), a comma list, or both (`all,main`). */
export async function expandRevisions(repoRef: string, list: string): Promise<string[]> {
  const { parseHubRef, listRevisions } = await hub();
  parseHubRef(repoRef);
  if (repoRef.includes('@')) {
    throw new UsageError(`--revisions names the revisions: give the repository without @REVISION (hf://OWNER/NAME), not ${repoRef}`);
  }
  const out: string[] = [];
  for (const item of list.split(',').map((s) => s.trim())) {
    if (item === '') throw new UsageError(`--revisions: empty name in "${list}"`);
    if (item !== 'all') out.push(item);
    else {
      const steps = (await listRevisions(repoRef)).filter((b) => b.step !== undefined).map((b) => b.name);
      if (steps.length === 0) throw new InputError(`${repoRef}: --revisions all found no step<N> branches`);
      out.push(...steps);
    }
  }
  return [...new Set(out)];
}

/** The label a model gets without --labels: a hub reference's revision. */
export async function hubLabel(model: string): Promise<string | undefined> {
  return isHubRef(model) ? (await hub()).parseHubRef(model).revision : undefined;
}

/** Components of members linked by equal keys, in series order, each with the keys that linked it. */
function linkedGroups(keysOf: ReadonlyArray<Map<string, string> | undefined>): Array<{ members: number[]; names: Set<string> }> {
  const parent = keysOf.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  const firstWith = new Map<string, number>();
  const shared = new Map<number, Set<string>>();
  keysOf.forEach((keys, i) => {
    for (const [key, name] of keys ?? []) {
      const j = firstWith.get(key);
      if (j === undefined) {
        firstWith.set(key, i);
        continue;
      }
      const [a, b] = [find(i), find(j)];
      parent[Math.max(a, b)] = Math.min(a, b);
      const names = shared.get(j) ?? new Set();
      names.add(name);
      shared.set(j, names);
    }
  });
  const groups = new Map<number, { members: number[]; names: Set<string> }>();
  keysOf.forEach((_, i) => {
    const root = find(i);
    const g = groups.get(root) ?? { members: [], names: new Set<string>() };
    g.members.push(i);
    for (const n of shared.get(i) ?? []) g.names.add(n);
    groups.set(root, g);
  });
  return [...groups.values()].filter((g) => g.members.length > 1);
}

function resultKey(id: Identity, sample: number | 'full', opts: AnalyzeOptions): string {
  const files = Object.entries(id.sha256).sort(([a], [b]) => (a < b ? -1 : 1));
  const layerSample = sample === 'full' ? null : opts.layerSample;
  // v2: results gained qAlpha; v3: bytesSha256 hashes the sampled elements, not whole rows.
  return createHash('sha256').update(JSON.stringify({ v: 3, files, sample, layerSample, params: opts.params })).digest('hex');
}

export interface CachedResult {
  layout: string;
  architecture: string;
  result: SampleResult;
}

export type ResultCache = Awaited<ReturnType<typeof resultCache>>;

/**
 * The result cache: one small file per sample in the commit's directory of the hub cache or,
 * when the backend has a cache its whole deployment shares (JetStream's cache bucket), there,
 * so any coordinator's result is every later run's hit.
 */
async function resultCache(shared?: TextCache) {
  const parse = (text: string | undefined): CachedResult | undefined => {
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as CachedResult;
    } catch {
      return undefined;
    }
  };
  if (shared) {
    return {
      get: async (id: Identity, sample: number | 'full', opts: AnalyzeOptions) => parse(await shared.get(`result.${resultKey(id, sample, opts)}`)),
      put: (id: Identity, sample: number | 'full', opts: AnalyzeOptions, value: CachedResult) => shared.put(`result.${resultKey(id, sample, opts)}`, JSON.stringify(value)),
    };
  }
  const { resolveHubOptions, HubCache } = await hub();
  const cache = new HubCache(resolveHubOptions({}).cacheDir);
  return {
    get: async (id: Identity, sample: number | 'full', opts: AnalyzeOptions) => parse(await cache.getText(id.repo, id.commit, `result-${resultKey(id, sample, opts)}.json`)),
    put: (id: Identity, sample: number | 'full', opts: AnalyzeOptions, value: CachedResult) => cache.putText(id.repo, id.commit, `result-${resultKey(id, sample, opts)}.json`, JSON.stringify(value)),
  };
}

/** The samples of a member found in the result cache, and those left to compute. */
export async function cachedSamples(id: Identity | undefined, opts: AnalyzeOptions, cache: ResultCache | undefined) {
  const wanted = opts.samples === 'full' ? (['full'] as const) : opts.samples;
  const found = new Map<number | 'full', CachedResult>();
  if (id && cache) {
    for (const s of wanted) {
      const hit = await cache.get(id, s, opts);
      // A result cached without --per-layer has no block spectra: compute it again.
      if (hit && (!opts.perLayer || hit.result.blocks)) found.set(s, hit);
    }
  }
  return { found, todo: wanted.filter((s) => !found.has(s)) };
}

interface OpenedMember {
  /** Samples found in the result cache. */
  found: Map<number | 'full', CachedResult>;
  /** The checkpoint opened and its rows read for the others; absent when all were cached. */
  opened?: OpenedModel;
  model: string;
  todoOpts: AnalyzeOptions;
}

/** The reading half of a member: result-cache lookups, then the rows the other samples need. */
async function openMember(
  m: SeriesMember,
  id: Identity | undefined,
  opts: AnalyzeOptions,
  listener: RunListener | undefined,
  cache: ResultCache | undefined,
): Promise<OpenedMember> {
  const { found, todo } = await cachedSamples(id, opts, cache);
  // The commit described, not the branch: a branch moved since then must not slip in.
  const model = id ? `hf://${id.repo}@${id.commit}` : m.model;
  const todoOpts: AnalyzeOptions = { ...opts, samples: opts.samples === 'full' ? 'full' : (todo as number[]) };
  return { found, model, todoOpts, ...(todo.length > 0 ? { opened: await openForAnalysis(model, todoOpts, listener) } : {}) };
}

/** The computing half: shards of the samples not cached, then the member's results. */
async function analyseMember(
  m: SeriesMember,
  id: Identity | undefined,
  opts: AnalyzeOptions,
  backend: ShardBackend,
  listener: RunListener | undefined,
  cache: ResultCache | undefined,
  { found, opened, model, todoOpts }: OpenedMember,
): Promise<AnalysedMember> {
  const wanted = opts.samples === 'full' ? (['full'] as const) : opts.samples;
  let report: AnalyzeReport | undefined;
  if (opened) {
    report = await analyzeModel(model, todoOpts, backend, listener, opened);
    for (const r of report.samples) {
      if (id && cache) await cache.put(id, r.sample, opts, { layout: report.layout, architecture: report.architecture, result: r });
    }
  }
  const bySample = new Map(report?.samples.map((r) => [r.sample, r]));
  const first = found.values().next().value as CachedResult | undefined;
  return {
    ...m,
    ...(id ? { commit: id.commit, sha256: id.sha256 } : {}),
    layout: report?.layout ?? first!.layout,
    architecture: report?.architecture ?? first!.architecture,
    samples: wanted.map((s) => bySample.get(s) ?? found.get(s)!.result),
    stats: report?.stats ?? null,
    cachedSamples: found.size,
  };
}

/**
 * The coordinator reads: the next checkpoint is read while the current one's shards compute;
 * reading the one after waits for that, so at most two checkpoints' rows are in memory.
 */
async function analyseInTurn(
  todo: readonly number[],
  analyse: (i: number, opened: OpenedMember) => Promise<AnalysedMember>,
  open: (index: number) => Promise<OpenedMember>,
  done: (i: number, a: AnalysedMember) => void,
): Promise<void> {
  let next = todo.length > 0 ? open(0) : undefined;
  try {
    for (const [index, i] of todo.entries()) {
      const current = await next!;
      next = index + 1 < todo.length ? open(index + 1) : undefined;
      done(i, await analyse(i, current));
    }
  } finally {
    // A failed run leaves the read-ahead checkpoint open: close it.
    void next?.then((m) => m.opened?.ckpt.close(), () => {});
  }
}

/** sha256 over the per-sample digests; undefined unless every sample has one. */
function sampledSha256(a: AnalysedMember): string | undefined {
  if (!a.samples.every((s) => s.bytesSha256)) return undefined;
  return createHash('sha256')
    .update(a.samples.map((s) => `${s.sample}:${s.bytesSha256}`).join('\n'))
    .digest('hex');
}

export async function runSeries(
  members: SeriesMember[],
  opts: AnalyzeOptions,
  backend: ShardBackend,
  listener: RunListener | undefined,
  options: { keepDuplicates: boolean },
): Promise<SeriesResult> {
  const warnings: string[] = [];
  const why = new Map<number, string>();
  const identify = async (m: SeriesMember, i: number): Promise<Identity | undefined> => {
    if (!isHubRef(m.model)) return undefined;
    const { describeRevision, parseHubRef } = await hub();
    const ref = parseHubRef(m.model);
    try {
      const d = await describeRevision(m.model);
      const sha256: Record<string, string> = {};
      for (const f of d.files) sha256[f.path] = f.sha256 ?? `git:${d.commit}:${f.path}`;
      const fileBytes = d.files.reduce((a, f) => a + f.size, 0);
      return { repo: ref.repo, revision: ref.revision, commit: d.commit, sha256, gptNeox: d.config.model_type === 'gpt_neox', fileBytes };
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      why.set(i, err.message);
      return undefined;
    }
  };
  const ids = new Array<Identity | undefined>(members.length);
  await inLanes(members.length, DESCRIBE_CONCURRENCY, async (i) => void (ids[i] = await identify(members[i], i)));
  const isMissing = (i: number) => why.has(i);
  const missing = members.flatMap((m, i) => (why.has(i) ? [{ label: m.label, model: m.model, reason: why.get(i)! }] : []));
  for (const x of missing) warnings.push(`warning: ${x.label} is missing and left out: ${x.reason}`);
  if (isMissing(0)) throw new InputError(`the initial checkpoint ${members[0].label} is missing: ${why.get(0)}`);

  const duplicates: Array<DuplicateGroup & { members: number[] }> = [];
  const excluded = new Set<number>();
  const exclude = (group: number[]) => {
    if (!options.keepDuplicates) for (const i of group.slice(1)) excluded.add(i);
  };
  // Weight files by sha256 (a shared single shard links its revisions too). Git-stored
  // weights have no sha256; their key is unique to the commit, so they never match.
  const fileGroups = linkedGroups(ids.map((id) => (id ? new Map(Object.entries(id.sha256).map(([file, sha]) => [sha, file])) : undefined)));
  for (const g of fileGroups) {
    duplicates.push({ members: g.members, labels: [], reason: 'file-sha256', expected: false, files: [...g.names].sort() });
    exclude(g.members);
  }

  const cache = ids.some((id) => id) ? await resultCache(backend.sharedCache?.()) : undefined;
  const analysed = new Map<number, AnalysedMember>();
  const todo = members.flatMap((m, i) => (isMissing(i) || excluded.has(i) ? [] : [i]));
  const open = (index: number) => {
    const i = todo[index];
    // Names the checkpoint being read and lets the progress bar plan the whole series.
    listener?.({ type: 'checkpoint', label: members[i].label, index, of: todo.length });
    const p = openMember(members[i], ids[i], opts, listener, cache);
    p.catch(() => {}); // awaited below; marked handled so a failure during the previous compute is not fatal twice
    return p;
  };
  // Workers that read for themselves take the whole series at once (series-on-workers.ts).
  if (opts.workersRead && opts.samples !== 'full') {
    const done = await analyseOnWorkers(todo.map((i) => ({ index: i, member: members[i], id: ids[i] })), opts, backend, listener, cache);
    for (const [i, a] of done) analysed.set(i, a);
  } else {
    await analyseInTurn(todo, (i, opened) => analyseMember(members[i], ids[i], opts, backend, listener, cache, opened), open, (i, a) => analysed.set(i, a));
  }

  const hashes = new Map<number, string>();
  for (const [i, a] of analysed) {
    const h = sampledSha256(a);
    if (h) hashes.set(i, h);
  }
  const byBytes = new Map([...hashes].map(([i, h]) => [i, new Map([[h, h]])]));
  const fileRoot = (i: number) => fileGroups.find((g) => g.members.includes(i));
  for (const g of linkedGroups(members.map((_, i) => byBytes.get(i)))) {
    // Already reported as one file group: the same bytes are no news.
    const root = fileRoot(g.members[0]);
    if (root && g.members.every((i) => root.members.includes(i))) continue;
    duplicates.push({ members: g.members, labels: [], reason: 'sampled-bytes', expected: false });
    exclude(g.members);
    for (const i of g.members.slice(1)) if (excluded.has(i)) analysed.delete(i);
  }

  await nameExpected(duplicates, ids);
  for (const d of duplicates) {
    d.labels = d.members.map((i) => members[i].label);
    const what = d.reason === 'file-sha256' ? `hold the same weight file${d.files!.length > 1 ? 's' : ''} (${d.files!.join(', ')})` : 'read identical sampled weight bytes';
    const left = d.members.slice(1).filter((i) => excluded.has(i)).map((i) => members[i].label);
    const fate = left.length ? `; ${left.join(', ')} left out of E (--keep-duplicates keeps ${left.length > 1 ? 'them' : 'it'})` : '';
    warnings.push(d.expected ? `note: ${d.labels.join(' and ')} ${what}, as expected (${d.note})${fate}` : `warning: ${d.labels.join(', ')} ${what}: duplicates${fate}`);
  }

  const integrity: SeriesIntegrity = {
    checkpoints: members.flatMap((m, i) => {
      if (isMissing(i)) return [];
      const h = analysed.has(i) ? hashes.get(i) : undefined;
      return [{ label: m.label, model: m.model, ...(ids[i] ? { commit: ids[i]!.commit, sha256: ids[i]!.sha256 } : {}), ...(h ? { sampledSha256: h } : {}) }];
    }),
    duplicates: duplicates.map(({ members: _, ...d }) => d),
    excluded: [...excluded].sort((a, b) => a - b).map((i) => members[i].label),
    missing,
  };
  return { members: [...analysed].sort((a, b) => a[0] - b[0]).map(([, a]) => a), integrity, warnings };
}

/** Marks the duplicates a training series is known to have (see MAIN_NOTE, STEP0_NOTE). */
async function nameExpected(duplicates: Array<DuplicateGroup & { members: number[] }>, ids: ReadonlyArray<Identity | undefined>): Promise<void> {
  const lastStep = new Map<string, string | undefined>();
  for (const d of duplicates) {
    const revs = d.members.map((i) => ids[i]);
    if (revs.some((r) => !r) || new Set(revs.map((r) => r!.repo)).size !== 1 || d.members.length !== 2) continue;
    const names = new Set(revs.map((r) => r!.revision));
    if (names.has('main')) {
      const repo = revs[0]!.repo;
      if (!lastStep.has(repo)) {
        const steps = (await (await hub()).listRevisions(`hf://${repo}`)).filter((b) => b.step !== undefined);
        lastStep.set(repo, steps[steps.length - 1]?.name);
      }
      const last = lastStep.get(repo);
      if (last && names.has(last)) Object.assign(d, { expected: true, note: MAIN_NOTE });
    } else if (names.has('step0') && names.has('step1') && revs.every((r) => r!.gptNeox)) {
      Object.assign(d, { expected: true, note: STEP0_NOTE });
    }
  }
}
