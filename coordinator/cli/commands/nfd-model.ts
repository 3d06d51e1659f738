import type { Command } from 'commander';
import { UsageError } from '../../../proto/errors.js';
import type { NfdParams } from '../../../proto/shard.js';
import { modelNfd, type ModelNfdOptions } from '../../analysis/model-nfd.js';
import { runInfo } from '../../report/figure-meta.js';
import { nfdJson, nfdSummary, topNeurons, writeNfdReport } from '../../report/nfd-report.js';
import { json, threadsFrom, withBackend, type CliContext } from '../context.js';
import { parseInteger, parseSamples, parseShardMb } from '../flags.js';
import { table } from '../format.js';

/** `nfd` reads an edge list when the path names one (.npy, .csv), else a checkpoint. */
export const isEdgeListPath = (path: string) => /\.(npy|csv)$/i.test(path);

const MODEL_ONLY_FLAGS = { samples: '--samples', full: '--full', layerSample: '--layer-sample', shardMb: '--shard-mb', out: '--out' } as const;

/** An edge list has no samples, layers or report directory: such a flag is a mistake worth naming. */
export function refuseModelFlags(path: string, o: Record<string, unknown>): void {
  const given = Object.entries(MODEL_ONLY_FLAGS).filter(([k]) => o[k] !== undefined).map(([, flag]) => flag);
  if (given.length) throw new UsageError(`${given.join(', ')} appl${given.length > 1 ? 'y' : 'ies'} to nfd MODEL (a checkpoint), but ${path} is an edge list`);
}

export function addModelNfdFlags(cmd: Command): void {
  cmd.option('--samples <list>', 'MODEL: sample indices, e.g. 0-9 or 0,3,5 (default: 0-9)');
  cmd.option('--full', 'MODEL: every input neuron of every layout matrix instead of samples');
  // Defaults applied in modelNfdOptions, so that giving one of these with an edge list is seen.
  cmd.option('--layer-sample <k>', 'MODEL: neurons sampled per layer (default: 32)');
  cmd.option('--shard-mb <n>', 'MODEL --full: at most this many MB of stored weights per shard, decoded to float64 while it runs (default: 8)');
  cmd.option('--out <dir>', 'MODEL: write report.json, nfd.csv, the nfd-histogram figure and report.html here');
}

export function modelNfdOptions(o: Record<string, string | boolean | undefined>, params: NfdParams, threads: number): ModelNfdOptions {
  if (o.full && o.samples !== undefined) throw new UsageError('--samples and --full exclude each other');
  return {
    samples: o.full ? 'full' : parseSamples((o.samples as string | undefined) ?? '0-9'),
    layerSample: parseInteger('--layer-sample', (o.layerSample as string | undefined) ?? '32', 1),
    params,
    shardsPerSample: o.shards === undefined ? Math.max(1, threads) : parseInteger('--shards', o.shards as string, 1),
    shardBytes: parseShardMb((o.shardMb as string | undefined) ?? '8') * (1 << 20),
  };
}

export async function runModelNfd(ctx: CliContext, model: string, o: Record<string, string | boolean | undefined>, params: NfdParams): Promise<void> {
  const threads = threadsFrom(o.threads as string | undefined);
  const opts = modelNfdOptions(o, params, threads);
  const report = await withBackend(ctx, threads, 'nfd', (b, l) => modelNfd(model, opts, b, l));
  const info = runInfo();
  const files = o.out ? await writeNfdReport(o.out as string, report, info) : [];
  if (o.json) {
    ctx.out(json(nfdJson(report, info)));
    return;
  }
  const s = nfdSummary(report);
  const f = (v: number | null) => (v === null ? '-' : v.toFixed(6));
  const top = topNeurons(report, 10);
  ctx.out(
    `${model}: ${report.architecture}, layout ${report.layout}, ${report.mode === 'full' ? 'full NIN' : `layer sample ${report.layerSample}`}; NFD threshold ${params.threshold}, decimals ${params.decimals}\n` +
      `${s.nodes} nodes, ${s.zeros} with NFD 0; the others: mean ${f(s.mean)} (std ${f(s.std)}), median ${f(s.median)}, range [${f(s.min)}, ${f(s.max)}]\n` +
      `top ${top.length} neurons by NFD:\n` +
      table(['sample', 'node', 'block', 'matrix', 'neuron', 'nfd'], top.map((n) => [String(n.sample), String(n.node), String(n.block), n.matrix, String(n.neuron), n.nfd.toFixed(6)])) +
      report.notes.map((n) => `note: ${n}\n`).join('') +
      (files.length ? `report: ${files.join(', ')}\n` : 'every node: --json, or --out DIR for nfd.csv\n'),
  );
}
