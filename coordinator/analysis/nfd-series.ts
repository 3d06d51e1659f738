import type { NfdParams } from '../../proto/shard.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import type { RunListener } from '../run/run-shards.js';
import { modelNfd } from './model-nfd.js';
import type { AnalyzeOptions } from './model-analysis.js';
import { binIndex, definedValues, summarizeNfd, type NfdSummary } from './nfd-summary.js';

/**
 * `emergence --nfd`: the NFD distribution of every checkpoint of a series (the same samples,
 * or the full NIN), summarised and binned on one grid shared by all checkpoints so their
 * histograms compare.
 */

export const NFD_DEFAULTS: NfdParams = { threshold: 200, decimals: 0 };
export const SERIES_BINS = 30;
/** Full-NIN NFD shards decode their weights to float64: smaller than mfa's 32 MB. */
const FULL_SHARD_BYTES = 8 << 20;

export interface NfdDistribution {
  label: string;
  step: number | null;
  summary: NfdSummary;
  /** Defined values per bin of the series' grid. */
  counts: number[];
}

export interface NfdSeries {
  params: NfdParams;
  /** The shared grid: SERIES_BINS equal bins of [lo, hi] (the defined values of every checkpoint). */
  grid: { lo: number; hi: number; bins: number } | null;
  checkpoints: NfdDistribution[];
}

export async function nfdSeries(
  members: ReadonlyArray<{ label: string; step: number | null; model: string }>,
  opts: AnalyzeOptions,
  backend: ShardBackend,
  listener?: RunListener,
): Promise<NfdSeries> {
  const runs: Array<{ label: string; step: number | null; summary: NfdSummary; values: Float32Array }> = [];
  for (const m of members) {
    const r = await modelNfd(m.model, { samples: opts.samples, layerSample: opts.layerSample, params: NFD_DEFAULTS, shardsPerSample: opts.shardsPerSample, shardBytes: FULL_SHARD_BYTES }, backend, listener);
    const sorted = definedValues(r.tables);
    // Kept as float32 only to place them in the shared bins later; the summary is exact.
    runs.push({ label: m.label, step: m.step, summary: summarizeNfd(sorted, r.stats.nodes), values: Float32Array.from(sorted) });
  }
  const defined = runs.filter((r) => r.summary.min !== null);
  const grid = defined.length ? { lo: Math.min(...defined.map((r) => r.summary.min!)), hi: Math.max(...defined.map((r) => r.summary.max!)), bins: SERIES_BINS } : null;
  return {
    params: NFD_DEFAULTS,
    grid,
    checkpoints: runs.map((r) => {
      const counts = new Array<number>(grid?.bins ?? 0).fill(0);
      if (grid) for (const v of r.values) counts[binIndex(v, grid.lo, grid.hi, grid.bins)]++;
      return { label: r.label, step: r.step, summary: r.summary, counts };
    }),
  };
}
