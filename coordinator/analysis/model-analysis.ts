import { resolve } from 'node:path';
import type { MfaParams, MfaShardResult, SampledShardResult, ShardTask } from '../../proto/shard.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import type { Checkpoint } from '../../worker/io/checkpoint.js';
import type { Layout } from '../../worker/nin/layouts.js';
import { checkLayerSample, drawPlan, type SamplePlan } from '../../worker/nin/sample-plan.js';
import { sampledEdges } from '../../worker/nin/sampled-edges.js';
import { sampleDigest } from '../../worker/nin/sampled-digest.js';
import { runSampleShards } from '../../worker/nin/sample-shards.js';
import { openModel, readSampledRows, type ReadCells } from '../../worker/nin/sampled-read.js';
import { matrixTasks } from '../../worker/plan/shard-plan.js';
import { sampledTasks } from '../plan/sampled-tasks.js';
import { forWorkers, workerModelRef } from '../plan/worker-models.js';
import { RunJournal, runFingerprint } from '../run/journal.js';
import { runShards, type RunListener } from '../run/run-shards.js';
import { statsOf } from './edge-analysis.js';
import { mergePartials } from './merge.js';
import { blockSpectra, matrixTaskBlocks, type BlockSpectrum } from './per-layer.js';
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
  /**
   * Remote workers read the checkpoints themselves: shards name the model (worker-models.ts)
   * instead of carrying rows or bytes, and sampled shards are cut in `pieces` per checkpoint.
   */
  workersRead?: { modelRoot?: string; pieces: number };
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

/** The resume journal of this run, when asked for; its identity covers the model files and the plan. */
async function openJournal(path: string, ckpt: Checkpoint, opts: AnalyzeOptions, tasks: readonly ShardTask[], more: object = {}): Promise<RunJournal | undefined> {
  if (!opts.journal) return undefined;
  // A hub checkpoint is identified by its commit and file hashes; a local one by its path.
  const model = ckpt.commit ? { commit: ckpt.commit, sha256: ckpt.sha256 } : resolve(path);
  const description = { model, samples: opts.samples, layerSample: opts.layerSample, params: opts.params, ...more };
  return RunJournal.open(opts.journal.dir, runFingerprint(description, tasks), opts.journal.resume);
}

export { openModel };

/** The sampled edge lists of a model, as `nin` writes them. */
export async function modelEdgeLists(path: string, samples: number[], layerSample: number) {
  const { ckpt, layout } = await openModel(path, layerSample);
  try {
    checkLayerSample(layout, layerSample);
    const plans = samples.map((s) => drawPlan(layout, s));
    const cells = await readSampledRows(ckpt, layout, plans);
    return { layout, plans, edges: plans.map((p) => sampledEdges(layout, p, cells)) };
  } finally {
    await ckpt.close();
  }
}

/** A model opened and, when sampled, its rows read: the reading half of an analysis. */
export interface OpenedModel {
  started: number;
  ckpt: Checkpoint;
  layout: Layout;
  sampled?: { plans: SamplePlan[]; cells: ReadCells };
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
    // The workers read the rows: only the headers were read here, to plan and to pin the commit.
    if (opts.workersRead) return { started, ckpt, layout };
    const plans = opts.samples.map((s) => drawPlan(layout, s));
    const cells = await readSampledRows(ckpt, layout, plans, (tensors, of, bytes) => listener?.({ type: 'read', tensors, of, bytes }));
    return { started, ckpt, layout, sampled: { plans, cells } };
  } catch (err) {
    await ckpt.close();
    throw err;
  }
}

/** One sample's spectrum from its shards' partial sums (and, with perLayer, each block's). */
export function sampleResult(
  p: { sample: number | 'full'; results: readonly MfaShardResult[]; blocks: readonly number[]; bytesSha256?: string },
  blockCount: number,
  opts: Pick<AnalyzeOptions, 'params' | 'perLayer'>,
): SampleResult {
  return {
    sample: p.sample,
    ...spectrumFromSums(mergePartials(p.results, opts.params.q.length), opts.params),
    ...(p.bytesSha256 ? { bytesSha256: p.bytesSha256 } : {}),
    ...(opts.perLayer ? { blocks: blockSpectra(p.results, p.blocks, blockCount, opts.params) } : {}),
  };
}

/** `analyze`: sampled NINs (the reference) or the full NIN, through the shard backend. */
export async function analyzeModel(path: string, opts: AnalyzeOptions, backend: ShardBackend, listener?: RunListener, opened?: OpenedModel): Promise<AnalyzeReport> {
  const { started, ckpt, layout, sampled } = opened ?? (await openForAnalysis(path, opts, listener));
  try {
    const notes: string[] = [];
    let journal: RunJournal | undefined;
    const perSample: Array<{ sample: number | 'full'; results: MfaShardResult[]; blocks: number[] }> = [];
    let bytesRead = 0;
    let workerRequests = 0;
    const digests = new Map<number | 'full', string>();
    if (opts.samples === 'full') {
      const planned = matrixTasks(layout.matrices, ckpt, opts.params, opts.shardBytes);
      const tasks = opts.workersRead ? forWorkers(planned, opts.workersRead.modelRoot) : planned;
      const edges = layout.matrices.reduce((a, m) => a + m.inputs * m.outputs, 0);
      listener?.({ type: 'planned', shards: tasks.length, edges });
      journal = await openJournal(path, ckpt, opts, tasks);
      // Remote workers read their own ranges; warming the coordinator's cache would read the whole model here.
      if (!opts.workersRead) await ckpt.warm?.(layout.matrices.flatMap((m) => m.parts.map((p) => p.tensor)));
      const results = (await runShards(tasks, backend, listener, journal)) as MfaShardResult[];
      for (const r of results) bytesRead += r.bytesRead;
      perSample.push({ sample: 'full', results, blocks: matrixTaskBlocks(tasks, layout) });
      notes.push('full NIN: every neuron of every layout matrix; the distance-1 pass-through edges are omitted (the (1, T] filter never keeps them)');
    } else if (opts.workersRead) {
      const model = workerModelRef(path, ckpt.commit, opts.workersRead.modelRoot);
      const tasks = sampledTasks(model, opts.samples, opts.workersRead.pieces, { ...opts, perLayer: Boolean(opts.perLayer) });
      listener?.({ type: 'planned', shards: tasks.length, edges: 0 });
      journal = await openJournal(path, ckpt, opts, tasks);
      const results = (await runShards(tasks, backend, listener, journal)) as SampledShardResult[];
      for (const r of results) {
        bytesRead += r.bytesRead;
        workerRequests += r.requests;
        for (const s of r.samples) {
          perSample.push({ sample: s.sample, results: s.partials, blocks: s.blocks ?? [] });
          digests.set(s.sample, s.bytesSha256);
        }
      }
      notes.push(`the workers read the checkpoint themselves (${tasks.length} sampled shard${tasks.length > 1 ? 's' : ''} naming ${model})`);
    } else {
      const { plans, cells } = sampled!;
      const cut = { params: opts.params, shardsPerSample: opts.shardsPerSample, perLayer: Boolean(opts.perLayer) };
      if (opts.journal) {
        // The digests hash exactly the weights each sample's edges come from, so with the cut they
        // fix every shard: the journal is opened before any sample is built.
        plans.forEach((plan) => digests.set(plan.sample, sampleDigest(layout, plan, cells)));
        journal = await openJournal(path, ckpt, opts, [], { digests: [...digests], shardsPerSample: cut.shardsPerSample, perLayer: cut.perLayer });
      }
      const blocks: number[][] = [];
      const results = await runSampleShards(layout, plans, cells, cut, (shards, plan) => {
        listener?.({ type: 'planned', shards: shards.tasks.length, edges: shards.groups.offsets[shards.groups.nodes.length], ...(plan === plans[0] ? {} : { adds: true }) });
        blocks.push(shards.blocks ?? []);
        const done = runShards(shards.tasks, backend, listener, journal) as Promise<MfaShardResult[]>;
        // Without a journal to name the run, each digest is taken while its sample's shards run.
        if (!digests.has(plan.sample)) digests.set(plan.sample, sampleDigest(layout, plan, cells));
        return done;
      });
      plans.forEach((plan, k) => perSample.push({ sample: plan.sample, results: results[k], blocks: blocks[k] }));
      bytesRead = ckpt.bytesRead();
    }
    const samples = perSample.map((p) => sampleResult({ ...p, bytesSha256: digests.get(p.sample) }, layout.blocks.length, opts));
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
        requests: (ckpt.stats?.requests ?? 0) + workerRequests,
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
