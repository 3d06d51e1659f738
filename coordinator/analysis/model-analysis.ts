import { resolve } from 'node:path';
import type { MfaParams, MfaShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import { openCheckpoint, type Checkpoint } from '../../worker/io/checkpoint.js';
import { bytesPerElement, elementReader } from '../../worker/io/dtype.js';
import { edgesFromRows } from '../../worker/io/edge-list.js';
import { readRowCells } from '../../worker/io/row-cells.js';
import { requireFloatTensor, rowBytesOf } from '../../worker/io/safetensors.js';
import { layoutFor, type Layout } from '../nin/layouts.js';
import { checkLayerSample, drawPlan, type SamplePlan } from '../nin/sample-plan.js';
import { cellSpan, sampleCells, type SampleCells } from '../nin/sample-cells.js';
import { sampledEdges, type RowLookup } from '../nin/sampled-edges.js';
import { groupBySource } from '../plan/edge-groups.js';
import { groupRanges, groupTasks, matrixTasks } from '../plan/shard-plan.js';
import { RunJournal, runFingerprint } from '../run/journal.js';
import { runShards, type RunListener } from '../run/run-shards.js';
import { statsOf } from './edge-analysis.js';
import { mergePartials } from './merge.js';
import { sampleDigest, type ReadCells, type TensorCells } from './sampled-digest.js';
import { blockShardRanges, blockSpectra, matrixTaskBlocks, rangeBlocks, type BlockSpectrum } from './per-layer.js';
import { spectrumFromSums, type Spectrum } from './spectrum.js';

export interface AnalyzeOptions {
  /** Sample indices, or 'full' for every neuron of every layout matrix. */
  samples: number[] | 'full';
  layerSample: number;
  params: MfaParams;
  /** Shards per sampled NIN. */
  shardsPerSample: number;
  /** Upper bound on the weight bytes of one full-NIN shard. */
  shardBytes: number;
  /** Persist finished shards under this directory (and with `resume`, reuse the ones there). */
  journal?: { dir: string; resume: boolean };
  /** Also each block's spectrum: shards are cut at block boundaries and merged per block (per-layer.ts). */
  perLayer?: boolean;
}

export interface SampleResult extends Spectrum {
  sample: number | 'full';
  /** Sampled mode: sha256 of the stored weights this sample's NIN uses (sampleDigest). */
  bytesSha256?: string;
  /** With perLayer: the spectrum of each block's nodes alone. */
  blocks?: BlockSpectrum[];
}

export interface AnalyzeReport {
  model: string;
  layout: string;
  architecture: string;
  mode: 'sampled' | 'full';
  layerSample: number | null;
  params: MfaParams;
  samples: SampleResult[];
  mean: { alpha0: number; width: number };
  /** Population standard deviation (NumPy's np.std) over samples. */
  std: { alpha0: number; width: number };
  stats: { edges: number; bytesRead: number; fileBytes: number; seconds: number; skippedNonFinite: number; shards: number; resumedShards: number; requests: number; link?: { rttMs: number; mbPerSec: number }; backends: Record<string, number> };
  notes: string[];
  /** Hub checkpoints: the commit read, and the sha256 of each weight file by name. */
  commit?: string;
  sha256?: Record<string, string>;
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const std = (v: number[]) => {
  const m = mean(v);
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
};

export function summarise(samples: ReadonlyArray<{ alpha0: number; width: number }>) {
  const a = samples.map((s) => s.alpha0);
  const w = samples.map((s) => s.width);
  return { mean: { alpha0: mean(a), width: mean(w) }, std: { alpha0: std(a), width: std(w) } };
}

/**
 * Reads the stored elements the samples use (each row once, however many samples use it),
 * keeping only those cells of each row; elements are decoded on demand.
 */
async function readSampledRows(ckpt: Checkpoint, layout: Layout, plans: SamplePlan[], cellsOut?: ReadCells, listener?: RunListener): Promise<RowLookup> {
  const wanted: SampleCells = new Map();
  for (const plan of plans) sampleCells(layout, plan, wanted);
  const rows = new Map<string, Map<number, (col: number) => number>>();
  // Reported as it goes: from the hub this is most of a sampled run (seconds to a minute).
  let tensors = 0;
  let bytes = 0;
  await Promise.all(
    Array.from(wanted, async ([tensor, cellsOfRow]) => {
      const info = ckpt.tensors.get(tensor)!;
      const dtype = requireFloatTensor(info);
      const span = cellSpan(cellsOfRow);
      const raw = await readRowCells(info, span.rows, span.cols);
      const e = bytesPerElement(dtype)!;
      const cells: TensorCells = { ...span, elementBytes: e, raw };
      cellsOut?.set(tensor, cells);
      bytes += span.rows.length * rowBytesOf(info);
      listener?.({ type: 'read', tensors: ++tensors, of: wanted.size, bytes });
      const slotOf = new Int32Array(info.shape[1]).fill(-1);
      span.cols.forEach((c, k) => (slotOf[c] = k));
      const width = span.cols.length * e;
      const decoded = new Map<number, (col: number) => number>();
      span.rows.forEach((r, k) => {
        const read = elementReader(dtype, raw.subarray(k * width, (k + 1) * width));
        decoded.set(r, (col) => read(slotOf[col]));
      });
      rows.set(tensor, decoded);
    }),
  );
  return (t, r) => rows.get(t)!.get(r)!;
}

/** The resume journal of this run, when asked for; its identity covers the model files and the plan. */
async function openJournal(path: string, ckpt: Checkpoint, opts: AnalyzeOptions, tasks: readonly ShardTask[]): Promise<RunJournal | undefined> {
  if (!opts.journal) return undefined;
  // A hub checkpoint is identified by its commit and file hashes; a local one by its path.
  const model = ckpt.commit ? { commit: ckpt.commit, sha256: ckpt.sha256 } : resolve(path);
  const description = { model, samples: opts.samples, layerSample: opts.layerSample, params: opts.params };
  return RunJournal.open(opts.journal.dir, runFingerprint(description, tasks), opts.journal.resume);
}

export async function openModel(path: string, layerSample: number): Promise<{ ckpt: Checkpoint; layout: Layout }> {
  const ckpt = await openCheckpoint(path);
  try {
    return { ckpt, layout: layoutFor(path, ckpt.config, ckpt.tensors, layerSample) };
  } catch (err) {
    await ckpt.close();
    throw err;
  }
}

/** The sampled edge lists of a model, as `nin` writes them. */
export async function modelEdgeLists(path: string, samples: number[], layerSample: number) {
  const { ckpt, layout } = await openModel(path, layerSample);
  try {
    checkLayerSample(layout, layerSample);
    const plans = samples.map((s) => drawPlan(layout, s));
    const rowOf = await readSampledRows(ckpt, layout, plans);
    return { layout, plans, edges: plans.map((p) => sampledEdges(layout, p, rowOf)) };
  } finally {
    await ckpt.close();
  }
}

/** A model opened and, when sampled, its rows read: the reading half of an analysis. */
export interface OpenedModel {
  started: number;
  ckpt: Checkpoint;
  layout: Layout;
  sampled?: { plans: SamplePlan[]; cells: ReadCells; rowOf: RowLookup };
}

/**
 * Opens `path` and reads every row its samples need. An emergence series runs this for the
 * next checkpoint while the current one's shards compute (runSeries), so reading and
 * computing overlap; the caller hands the result to analyzeModel, which closes it.
 */
export async function openForAnalysis(path: string, opts: AnalyzeOptions, listener?: RunListener): Promise<OpenedModel> {
  const started = performance.now();
  const { ckpt, layout } = await openModel(path, opts.layerSample);
  if (opts.samples === 'full') return { started, ckpt, layout };
  try {
    checkLayerSample(layout, opts.layerSample);
    const plans = opts.samples.map((s) => drawPlan(layout, s));
    const cells: ReadCells = new Map();
    const rowOf = await readSampledRows(ckpt, layout, plans, cells, listener);
    return { started, ckpt, layout, sampled: { plans, cells, rowOf } };
  } catch (err) {
    await ckpt.close();
    throw err;
  }
}

/** `analyze`: sampled NINs (the reference) or the full NIN, through the shard backend. */
export async function analyzeModel(path: string, opts: AnalyzeOptions, backend: ShardBackend, listener?: RunListener, opened?: OpenedModel): Promise<AnalyzeReport> {
  const { started, ckpt, layout, sampled } = opened ?? (await openForAnalysis(path, opts, listener));
  try {
    const notes: string[] = [];
    let journal: RunJournal | undefined;
    const perSample: Array<{ sample: number | 'full'; results: MfaShardResult[]; blocks: number[] }> = [];
    let bytesRead = 0;
    const digests = new Map<number | 'full', string>();
    if (opts.samples === 'full') {
      const tasks = matrixTasks(layout.matrices, ckpt, opts.params, opts.shardBytes);
      const edges = layout.matrices.reduce((a, m) => a + m.inputs * m.outputs, 0);
      listener?.({ type: 'planned', shards: tasks.length, edges });
      journal = await openJournal(path, ckpt, opts, tasks);
      await ckpt.warm?.(layout.matrices.flatMap((m) => m.parts.map((p) => p.tensor)));
      const results = (await runShards(tasks, backend, listener, journal)) as MfaShardResult[];
      for (const r of results) bytesRead += r.bytesRead;
      perSample.push({ sample: 'full', results, blocks: matrixTaskBlocks(tasks, layout) });
      notes.push('full NIN: every neuron of every layout matrix; the distance-1 pass-through edges are omitted (the (1, T] filter never keeps them)');
    } else {
      const { plans, cells, rowOf } = sampled!;
      plans.forEach((plan) => digests.set(plan.sample, sampleDigest(layout, plan, cells)));
      const groups = plans.map((plan) => groupBySource(edgesFromRows(sampledEdges(layout, plan, rowOf))));
      const rangesPer = groups.map((g) => (opts.perLayer ? blockShardRanges(g, opts.shardsPerSample, layout) : groupRanges(g, opts.shardsPerSample)));
      // Cutting at block boundaries adds at most one shard per boundary: ids stay distinct.
      const idStride = opts.shardsPerSample + (opts.perLayer ? layout.blocks.length : 0);
      const tasksPer = groups.map((g, k) => groupTasks(g, rangesPer[k], 'mfa', opts.params, k * idStride));
      listener?.({ type: 'planned', shards: tasksPer.reduce((a, t) => a + t.length, 0), edges: groups.reduce((a, g) => a + g.offsets[g.nodes.length], 0) });
      journal = await openJournal(path, ckpt, opts, tasksPer.flat());
      const all = (await runShards(tasksPer.flat(), backend, listener, journal)) as MfaShardResult[];
      let at = 0;
      plans.forEach((plan, k) => {
        perSample.push({ sample: plan.sample, results: all.slice(at, at + tasksPer[k].length), blocks: rangeBlocks(groups[k], rangesPer[k], layout) });
        at += tasksPer[k].length;
      });
      bytesRead = ckpt.bytesRead();
    }
    const samples: SampleResult[] = perSample.map(({ sample, results, blocks }) => ({
      sample,
      ...spectrumFromSums(mergePartials(results, opts.params.q.length), opts.params),
      ...(digests.has(sample) ? { bytesSha256: digests.get(sample) } : {}),
      ...(opts.perLayer ? { blocks: blockSpectra(results, blocks, layout.blocks.length, opts.params) } : {}),
    }));
    const run = statsOf(perSample.flatMap((p) => p.results));
    return {
      model: path,
      layout: layout.name,
      architecture: layout.architecture,
      mode: opts.samples === 'full' ? 'full' : 'sampled',
      layerSample: opts.samples === 'full' ? null : opts.layerSample,
      params: opts.params,
      samples,
      ...summarise(samples),
      stats: {
        edges: run.edges,
        bytesRead,
        fileBytes: ckpt.fileBytes,
        seconds: (performance.now() - started) / 1000,
        skippedNonFinite: run.skippedNonFinite,
        shards: run.shards,
        resumedShards: journal?.resumed ?? 0,
        // HTTP requests of a hub checkpoint (headers, rows, --full's cache warming); 0 for a local one.
        requests: ckpt.stats?.requests ?? 0,
        // Hub checkpoints: the CDN's round trip and throughput as the read planner measured them.
        ...(ckpt.stats?.link ? { link: ckpt.stats.link } : {}),
        backends: run.backends,
      },
      notes,
      ...(ckpt.commit ? { commit: ckpt.commit, sha256: ckpt.sha256 } : {}),
    };
  } finally {
    await ckpt.close();
  }
}
