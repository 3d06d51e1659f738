import { UsageError } from '../../../proto/errors.js';
import type { NfdParams } from '../../../proto/shard.js';
import { modelNfd, type ModelNfdOptions } from '../../analysis/model-nfd.js';
import { runInfo } from '../../report/figure-meta.js';
import { nfdJson, nfdSummary, topNeurons, writeNfdReport } from '../../report/nfd-report.js';
import { json, threadsFrom, withBackend, type CliContext } from '../context.js';
import { parseInteger, parseSamples, parseShardMb } from '../flags.js';
import { table } from '../format.js';

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
