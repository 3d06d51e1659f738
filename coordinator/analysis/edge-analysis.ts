import type { MfaParams, MfaShardResult, NfdParams, NfdShardResult } from '../../proto/shard.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import type { EdgeGroups } from '../plan/edge-groups.js';
import { groupRanges, groupTasks } from '../plan/shard-plan.js';
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
  const values: number[] = [];
  for (const r of results) values.push(...r.values);
  return { nodes: Array.from(groups.nodes), values, stats: statsOf(results) };
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
