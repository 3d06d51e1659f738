import type { MfaParams, MfaShardResult, NfdParams, NfdShardResult, ShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import type { EdgeStream } from '../../worker/io/edge-list.js';
import type { EdgeGroups } from '../../worker/plan/edge-groups.js';
import { groupRanges, groupTasks } from '../../worker/plan/shard-plan.js';
import { groupEdgeStream } from '../plan/streamed-groups.js';
import { runShards, type RunListener } from '../run/run-shards.js';
import { mergePartials } from './merge.js';
import { spectrumFromSums, type Spectrum } from './spectrum.js';

export interface EdgeRunStats {
  edges: number;
  skippedNonFinite: number;
  shards: number;
  /** Shards per partition-sum backend that computed them. */
  backends: Record<string, number>;
}

/** Map–reduce MFA of node-grouped edges: shards by node range, merged in shard order. */
export async function mfaOfGroups(
  groups: EdgeGroups,
  params: MfaParams,
  backend: ShardBackend,
  shards: number,
  listener?: RunListener,
): Promise<{ spectrum: Spectrum; stats: EdgeRunStats }> {
  const tasks = groupTasks(groups, groupRanges(groups, shards), 'mfa', params);
  listener?.({ type: 'planned', shards: tasks.length, edges: groups.offsets[groups.nodes.length] });
  const results = (await runShards(tasks, backend, listener)) as MfaShardResult[];
  return { spectrum: spectrumFromSums(mergePartials(results, params.q.length), params), stats: statsOf(results) };
}

/** NFD of every source node, in increasing node id. */
export async function nfdOfGroups(
  groups: EdgeGroups,
  params: NfdParams,
  backend: ShardBackend,
  shards: number,
  listener?: RunListener,
): Promise<{ nodes: number[]; values: number[]; stats: EdgeRunStats }> {
  const tasks = groupTasks(groups, groupRanges(groups, shards), 'nfd', params);
  listener?.({ type: 'planned', shards: tasks.length, edges: groups.offsets[groups.nodes.length] });
  const results = (await runShards(tasks, backend, listener)) as NfdShardResult[];
  return { nodes: Array.from(groups.nodes), values: nfdValues(results), stats: statsOf(results) };
}

/**
 * The shards of a streamed edge list, each started as soon as its weights are read
 * (groupEdgeStream); results in shard order, as runShards gives them.
 */
async function runEdgeStream(
  stream: EdgeStream,
  measure: 'mfa' | 'nfd',
  params: MfaParams | NfdParams,
  backend: ShardBackend,
  shards: number,
  listener?: RunListener,
): Promise<{ groups: EdgeGroups; results: ShardResult[] }> {
  const running = new Map<ShardTask, Promise<ShardResult>>();
  const start = (task: ShardTask) => {
    listener?.({ type: 'shard-started', id: task.id });
    const result = backend.run(task);
    // Awaited below, or dropped with its task when a guess of a sorted file proves wrong.
    result.catch(() => {});
    running.set(task, result);
  };
  // A .npy states its edge count: the bar can start before the plan is final (shards <= edges).
  const E = stream.declaredCount;
  if (E !== undefined && E > 0) listener?.({ type: 'planned', shards: Math.min(shards, E), edges: E });
  const make = (g: EdgeGroups, ranges: Array<[number, number]>, firstId: number) =>
    measure === 'mfa' ? groupTasks(g, ranges, 'mfa', params as MfaParams, firstId) : groupTasks(g, ranges, 'nfd', params as NfdParams, firstId);
  const { groups, tasks } = await groupEdgeStream(stream, shards, make, start);
  if (E === undefined) listener?.({ type: 'planned', shards: tasks.length, edges: groups.offsets[groups.nodes.length] });
  const results: ShardResult[] = new Array(tasks.length);
  for (let k = 0; k < tasks.length; k++) {
    results[k] = await running.get(tasks[k])!;
    listener?.({ type: 'shard-done', id: tasks[k].id, result: results[k], resumed: false });
  }
  return { groups, results };
}

/** MFA of an edge list read as a stream: the numbers of mfaOfGroups(groupBySource(edges)), bit for bit. */
export async function mfaOfEdgeStream(stream: EdgeStream, params: MfaParams, backend: ShardBackend, shards: number, listener?: RunListener): Promise<{ spectrum: Spectrum; stats: EdgeRunStats }> {
  const { results } = await runEdgeStream(stream, 'mfa', params, backend, shards, listener);
  return { spectrum: spectrumFromSums(mergePartials(results as MfaShardResult[], params.q.length), params), stats: statsOf(results as MfaShardResult[]) };
}

/** NFD of every source node of an edge list read as a stream, in increasing node id. */
export async function nfdOfEdgeStream(stream: EdgeStream, params: NfdParams, backend: ShardBackend, shards: number, listener?: RunListener): Promise<{ nodes: number[]; values: number[]; stats: EdgeRunStats }> {
  const { groups, results } = await runEdgeStream(stream, 'nfd', params, backend, shards, listener);
  return { nodes: Array.from(groups.nodes), values: nfdValues(results as NfdShardResult[]), stats: statsOf(results as NfdShardResult[]) };
}

function nfdValues(results: readonly NfdShardResult[]): number[] {
  const values = new Array<number>(results.reduce((n, r) => n + r.values.length, 0));
  let at = 0;
  for (const r of results) for (const v of r.values) values[at++] = v;
  return values;
}

export function statsOf(results: ReadonlyArray<{ edges: number; skippedNonFinite: number; backend: string }>): EdgeRunStats {
  let edges = 0;
  let skippedNonFinite = 0;
  // Shards per partition-sum backend that computed them; a GPU fallback counts as f64.
  const backends: Record<string, number> = {};
  for (const r of results) {
    edges += r.edges;
    skippedNonFinite += r.skippedNonFinite;
    backends[r.backend] = (backends[r.backend] ?? 0) + 1;
  }
  return { edges, skippedNonFinite, shards: results.length, backends };
}
