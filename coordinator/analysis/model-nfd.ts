import type { NfdParams, NfdShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import type { ByteSource } from '../../worker/io/byte-source.js';
import { edgesFromRows } from '../../worker/io/edge-list.js';
import { openSource } from '../../worker/io/open-source.js';
import { stageNodes, type StageNodes } from '../../worker/nin/stage-nodes.js';
import { groupBySource } from '../../worker/plan/edge-groups.js';
import { columnsPerShard, groupRanges, groupTasks, matrixParts } from '../../worker/plan/shard-plan.js';
import { runShards, type RunListener } from '../run/run-shards.js';
import { statsOf } from './edge-analysis.js';
import { modelEdgeLists, openModel } from './model-analysis.js';
import { matrixColumns } from './model-nfd-columns.js';

/**
 * `nfd MODEL`: the node fractal dimension (SPEC §3) of every source neuron of a checkpoint's
 * NIN, each named by where it lives. Sampled: the reference's sampled NINs, exactly the
 * edge lists `nin` writes, through the same nfd shards as `nfd EDGES`. Full: every input
 * neuron of every layout matrix, its out-weights read as a column range per shard.
 */

export interface ModelNfdOptions {
  samples: number[] | 'full';
  layerSample: number;
  params: NfdParams;
  /** Shards per sampled NIN. */
  shardsPerSample: number;
  /** Full NIN: at most this many bytes of stored weights per shard. */
  shardBytes: number;
}

/** One sample's nodes, in increasing node id, as columns (typed arrays: a full NIN has millions). */
export interface NfdTable {
  sample: number | 'full';
  node: Float64Array;
  /** Index into `stages` of the report: block, matrix name and first node id. */
  stage: Uint16Array;
  nfd: Float64Array;
}

export interface ModelNfdReport {
  model: string;
  layout: string;
  architecture: string;
  mode: 'sampled' | 'full';
  layerSample: number | null;
  params: NfdParams;
  stages: StageNodes[];
  tables: NfdTable[];
  /** bytesRead: the weight bytes the full NIN's shards read; null for samples, whose rows the sampled-row reader reads uncounted. */
  stats: { nodes: number; edges: number; skippedNonFinite: number; shards: number; bytesRead: number | null; seconds: number };
  notes: string[];
}

/** Which stage each node belongs to (nodes ascending, as every table lists them). */
function stagesOf(nodes: Float64Array, stages: readonly StageNodes[]): Uint16Array {
  const out = new Uint16Array(nodes.length);
  let s = 0;
  for (let i = 0; i < nodes.length; i++) {
    while (s + 1 < stages.length && stages[s + 1].start <= nodes[i]) s++;
    out[i] = s;
  }
  return out;
}

async function sampledNfd(path: string, samples: number[], opts: ModelNfdOptions, backend: ShardBackend, listener?: RunListener) {
  const { layout, edges } = await modelEdgeLists(path, samples, opts.layerSample);
  const groups = edges.map((e) => groupBySource(edgesFromRows(e)));
  const tasksPer = groups.map((g, k) => groupTasks(g, groupRanges(g, opts.shardsPerSample), 'nfd', opts.params, k * opts.shardsPerSample));
  listener?.({ type: 'planned', shards: tasksPer.reduce((a, t) => a + t.length, 0), edges: groups.reduce((a, g) => a + g.offsets[g.nodes.length], 0) });
  const results = (await runShards(tasksPer.flat(), backend, listener)) as NfdShardResult[];
  const stages = stageNodes(layout);
  let shard = 0;
  const tables = samples.map((sample, k) => {
    // A sample's shards are consecutive and cover its nodes in order.
    const nfd = new Float64Array(groups[k].nodes.length);
    let at = 0;
    for (let j = 0; j < tasksPer[k].length; j++) {
      const values = results[shard++].values;
      nfd.set(values, at);
      at += values.length;
    }
    return { sample, node: groups[k].nodes, stage: stagesOf(groups[k].nodes, stages), nfd };
  });
  return { layout, stages, tables, results, bytesRead: null, notes: [] as string[] };
}

interface ColumnJob {
  stage: number;
  colStart: number;
  colEnd: number;
}

/**
 * Runs the full NIN's column-range shards with a bounded number in flight: each shard's
 * weights are decoded to float64 just before it runs, so memory stays flat in model size.
 */
async function fullNfd(path: string, opts: ModelNfdOptions, backend: ShardBackend, listener?: RunListener) {
  const { ckpt, layout } = await openModel(path, opts.layerSample);
  const sources = new Map<string, Promise<ByteSource>>();
  try {
    const stages = stageNodes(layout);
    const parts = stages.map((s) => (s.stage.kind === 'matrix' ? matrixParts(s.stage.matrix, ckpt) : []));
    const jobs: ColumnJob[] = [];
    stages.forEach((s, stage) => {
      if (s.stage.kind !== 'matrix') return;
      const columns = columnsPerShard(parts[stage], opts.shardBytes);
      for (let c = 0; c < s.inputs; c += columns) jobs.push({ stage, colStart: c, colEnd: Math.min(s.inputs, c + columns) });
    });
    const edges = stages.reduce((a, s) => a + (s.stage.kind === 'matrix' ? s.inputs * s.stage.matrix.outputs : 0), 0);
    listener?.({ type: 'planned', shards: jobs.length, edges });
    await ckpt.warm?.(layout.matrices.flatMap((m) => m.parts.map((p) => p.tensor)));
    const sourceOf = (file: string) => {
      let s = sources.get(file);
      if (!s) sources.set(file, (s = openSource(file)));
      return s;
    };
    const results = new Array<NfdShardResult>(jobs.length);
    let next = 0;
    const lane = async () => {
      // One buffer per lane, reused: a shard's weights are free again once its result is back.
      let buffer: Float64Array | undefined;
      while (next < jobs.length) {
        const id = next++;
        const job = jobs[id];
        const s = stages[job.stage];
        const input = await matrixColumns(parts[job.stage], s.inputs, job.colStart, job.colEnd, sourceOf, buffer);
        if (input.weights.buffer !== buffer?.buffer) buffer = new Float64Array(input.weights.buffer as SharedArrayBuffer);
        const task: ShardTask = { id, measure: 'nfd', params: opts.params, input: { kind: 'groups', stride: 1, ...input } };
        listener?.({ type: 'shard-started', id });
        const result = (await backend.run(task)) as NfdShardResult;
        results[id] = result;
        listener?.({ type: 'shard-done', id, result, resumed: false });
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs.length, backend.concurrency * 2)) }, lane));
    // Every stage input is a node; pass-through inputs get 0 without a shard: their out-weights
    // are all 1 (one distinct distance, or fewer than 11), which SPEC §3 maps to 0.
    const total = stages.reduce((a, s) => a + s.inputs, 0);
    const node = new Float64Array(total);
    const stage = new Uint16Array(total);
    const nfd = new Float64Array(total);
    let at = 0;
    let job = 0;
    stages.forEach((s, k) => {
      for (let i = 0; i < s.inputs; i++) {
        node[at + i] = s.start + i;
        stage[at + i] = k;
      }
      while (job < jobs.length && jobs[job].stage === k) {
        nfd.set(results[job].values, at + jobs[job].colStart);
        job++;
      }
      at += s.inputs;
    });
    let bytesRead = 0;
    for (const s of sources.values()) bytesRead += (await s).bytesRead;
    const notes = ['full NIN: every input neuron of every stage; pass-through inputs (attention and gated-MLP wiring, weights all 1) have NFD 0 by SPEC §3 and are not computed'];
    return { layout, stages, tables: [{ sample: 'full' as const, node, stage, nfd }], results, bytesRead, notes };
  } finally {
    for (const s of sources.values()) await (await s.catch(() => undefined))?.close();
    await ckpt.close();
  }
}

export async function modelNfd(path: string, opts: ModelNfdOptions, backend: ShardBackend, listener?: RunListener): Promise<ModelNfdReport> {
  const started = performance.now();
  const run = opts.samples === 'full' ? await fullNfd(path, opts, backend, listener) : await sampledNfd(path, opts.samples, opts, backend, listener);
  const stats = statsOf(run.results);
  return {
    model: path,
    layout: run.layout.name,
    architecture: run.layout.architecture,
    mode: opts.samples === 'full' ? 'full' : 'sampled',
    layerSample: opts.samples === 'full' ? null : opts.layerSample,
    params: opts.params,
    stages: run.stages,
    tables: run.tables,
    stats: {
      nodes: run.tables.reduce((a, t) => a + t.node.length, 0),
      edges: stats.edges,
      skippedNonFinite: stats.skippedNonFinite,
      shards: stats.shards,
      bytesRead: run.bytesRead,
      seconds: (performance.now() - started) / 1000,
    },
    notes: run.notes,
  };
}
