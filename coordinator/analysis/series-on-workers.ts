import type { SampledShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import { openCheckpoint } from '../../worker/io/checkpoint.js';
import { sampledTasks } from '../plan/sampled-tasks.js';
import { workerModelRef } from '../plan/worker-models.js';
import { runShards, type RunListener } from '../run/run-shards.js';
import { statsOf } from './edge-analysis.js';
import type { AnalysedMember, CachedResult, Identity, ResultCache, SeriesMember } from './emergence-series.js';
import { cachedSamples } from './emergence-series.js';
import { sampleResult, type AnalyzeOptions, type SampleResult } from './model-analysis.js';

export interface SeriesCheckpoint {
  index: number;
  member: SeriesMember;
  id?: Identity;
}

/**
 * A sampled series spread over workers that read the checkpoints themselves: every
 * (checkpoint × samples) shard is planned up front and all go out at once, so each worker
 * reads over its own link while the others read theirs. A checkpoint's samples stay together
 * (one worker reads the rows they share once) unless there are fewer checkpoints than
 * workers, when each is cut into enough pieces to keep every worker busy. The result cache
 * is consulted first and filled after, as in the sequential path.
 */
export async function analyseOnWorkers(
  checkpoints: readonly SeriesCheckpoint[],
  opts: AnalyzeOptions,
  backend: ShardBackend,
  listener: RunListener | undefined,
  cache: ResultCache | undefined,
): Promise<Map<number, AnalysedMember>> {
  const workersRead = opts.workersRead!;
  const planned = await Promise.all(
    checkpoints.map(async (c) => {
      const { found, todo } = await cachedSamples(c.id, opts, cache);
      const model = c.id ? `hf://${c.id.repo}@${c.id.commit}` : workerModelRef(c.member.model, undefined, workersRead.modelRoot);
      // A local checkpoint's size, from its headers (the hub's comes with its identity).
      const fileBytes = c.id?.fileBytes ?? (await localFileBytes(c.member.model));
      return { ...c, found, todo: todo as number[], model, fileBytes, tasks: [] as ShardTask[] };
    }),
  );
  const busy = planned.filter((p) => p.todo.length > 0);
  const pieces = Math.max(1, Math.ceil(workersRead.pieces / Math.max(1, busy.length)));
  const cut = { params: opts.params, layerSample: opts.layerSample, shardsPerSample: opts.shardsPerSample, perLayer: Boolean(opts.perLayer) };
  let nextId = 0;
  for (const p of busy) {
    p.tasks = sampledTasks(p.model, p.todo, pieces, cut, nextId);
    nextId += p.tasks.length;
  }
  const tasks = busy.flatMap((p) => p.tasks);
  listener?.({ type: 'planned', shards: tasks.length, edges: 0, checkpoints: busy.map((p) => ({ label: p.member.label, shards: p.tasks.map((t) => t.id) })) });
  const results = tasks.length ? ((await runShards(tasks, backend, listener)) as SampledShardResult[]) : [];
  const byId = new Map(results.map((r) => [r.id, r]));

  const out = new Map<number, AnalysedMember>();
  for (const p of planned) {
    const mine = p.tasks.map((t) => byId.get(t.id)!);
    const computed = new Map<number, SampleResult>();
    for (const r of mine) {
      for (const s of r.samples) computed.set(s.sample, sampleResult({ sample: s.sample, results: s.partials, blocks: s.blocks ?? [], bytesSha256: s.bytesSha256 }, r.blockCount, opts));
    }
    // A worker's answer or, when every sample was cached, a cached one: both name the layout.
    const { layout, architecture } = mine[0] ?? (p.found.values().next().value as CachedResult);
    if (p.id && cache) for (const [sample, result] of computed) await cache.put(p.id, sample, opts, { layout, architecture, result });
    const run = statsOf(mine.flatMap((r) => r.samples.flatMap((s) => s.partials)));
    out.set(p.index, {
      ...p.member,
      ...(p.id ? { commit: p.id.commit, sha256: p.id.sha256 } : {}),
      layout,
      architecture,
      samples: (opts.samples as number[]).map((s) => computed.get(s) ?? p.found.get(s)!.result),
      stats: mine.length
        ? {
            edges: run.edges,
            bytesRead: mine.reduce((a, r) => a + r.bytesRead, 0),
            fileBytes: p.fileBytes,
            // Worker seconds: the shards of a series overlap, so no wall time is this checkpoint's own.
            seconds: mine.reduce((a, r) => a + r.seconds, 0),
            skippedNonFinite: run.skippedNonFinite,
            shards: mine.length,
            resumedShards: 0,
            requests: mine.reduce((a, r) => a + r.requests, 0),
            backends: run.backends,
          }
        : null,
      cachedSamples: p.found.size,
    });
  }
  return out;
}

async function localFileBytes(path: string): Promise<number> {
  const ckpt = await openCheckpoint(path);
  try {
    return ckpt.fileBytes;
  } finally {
    await ckpt.close();
  }
}
