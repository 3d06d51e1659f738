import type { ShardBackend } from '../../../worker/backends/shard-backend.js';
import { UsageError } from '../../../proto/errors.js';
import { analyzeModel, type AnalyzeOptions } from '../../analysis/model-analysis.js';
import { runInfo } from '../../report/figure-meta.js';
import type { AnalyzeResult } from '../../report/analyze-report.js';
import { json, threadsFrom, withBackend, type CliContext } from '../context.js';
import { mfaParams, parseInteger, parseSamples, parseShardMb } from '../flags.js';
import { table } from '../format.js';
import type { CommandOptions } from './common.js';
import { checkOutputDirectory } from '../../../worker/io/atomic-write.js';

/**
 * Workers read weight files under their own --model-root, which never holds an hf:// file:
 * for a full NIN of a hub checkpoint the coordinator reads the hub and ships each shard's bytes.
 */
/**
 * With remote workers the workers read the checkpoints themselves (shards name the model:
 * coordinator/plan/worker-models.ts); --ship-bytes keeps the coordinator reading and sending
 * rows or bytes, for workers that can reach neither the models nor the hub.
 */
export function readOnWorkers(o: CommandOptions, opts: AnalyzeOptions, backend: ShardBackend): AnalyzeOptions {
  if (!(o.workers || o.nats) || o.shipBytes) return opts;
  return { ...opts, workersRead: { modelRoot: o.modelRoot as string | undefined, pieces: Math.max(1, backend.workers ?? 1) } };
}

export function analyzeOptions(o: CommandOptions, threads: number): AnalyzeOptions {
  const full = Boolean(o.full);
  if (full && o.samples !== undefined) throw new UsageError('--samples and --full exclude each other');
  const shardMb = parseShardMb(o.shardMb as string);
  return {
    samples: full ? 'full' : parseSamples((o.samples as string | undefined) ?? '0-9'),
    layerSample: parseInteger('--layer-sample', o.layerSample as string, 1),
    params: mfaParams(o as never),
    shardsPerSample: o.shards === undefined ? Math.max(1, threads) : parseInteger('--shards', o.shards as string, 1),
    shardBytes: shardMb * (1 << 20),
    perLayer: Boolean(o.perLayer),
  };
}

/** `--out DIR`: the report, and with --per-layer its per-block files; the writers load only then. */
async function writeOutputs(dir: string, report: AnalyzeResult, perLayer: boolean): Promise<string[]> {
  const layers = perLayer ? await (await import('./analyze-per-layer.js')).perLayerOutputs(dir, report) : undefined;
  const { writeAnalyzeReport } = await import('../../report/write-reports.js');
  return [...(await writeAnalyzeReport(dir, report, layers ? [layers.section] : [])), ...(layers?.files ?? [])];
}

export async function run(ctx: CliContext, [model]: string[], o: CommandOptions): Promise<void> {
  const threads = threadsFrom(o.threads as string | undefined);
  const opts = analyzeOptions(o, threads);
  if (o.resume && o.out && o.resume !== o.out) throw new UsageError('--resume DIR writes its report into DIR: leave out --out, or give the same directory');
  const out = (o.resume ?? o.out) as string | undefined;
  if (out) opts.journal = { dir: out, resume: Boolean(o.resume) };
  if (out) await checkOutputDirectory(out);
  const report = { ...runInfo(), ...(await withBackend(ctx, threads, 'analyze', (b, l) => analyzeModel(model, readOnWorkers(o, opts, b), b, l), o)) };
  const files = out ? await writeOutputs(out, report, Boolean(opts.perLayer)) : [];
  if (o.json) {
    ctx.out(json(report));
    return;
  }
  const s = report.stats;
  const perBlock = opts.perLayer ? (await import('./analyze-per-layer.js')).perLayerText(report) : '';
  ctx.out(
    `${model}: ${report.architecture}, layout ${report.layout}, ${report.mode === 'full' ? 'full NIN' : `layer sample ${report.layerSample}`}${report.commit ? `, commit ${report.commit}` : ''}\n` +
      table(
        ['sample', 'alpha0', 'width', 'nodes selected', 'radii'],
        report.samples.map((r) => [String(r.sample), r.alpha0.toFixed(6), r.width.toFixed(6), String(r.nodesSelected), String(r.radii.length)]),
      ) +
      `mean alpha0 ${report.mean.alpha0.toFixed(6)} (std ${report.std.alpha0.toFixed(6)}), mean width ${report.mean.width.toFixed(6)} (std ${report.std.width.toFixed(6)})\n` +
      `${s.edges} edges, ${s.bytesRead} of ${s.fileBytes} bytes read (${((100 * s.bytesRead) / s.fileBytes).toFixed(2)}%)${s.requests ? ` in ${s.requests} HTTP requests` : ''}, ${s.seconds.toFixed(2)} s, ${(s.edges / s.seconds / 1e6).toFixed(1)}M edges/s` +
      `${s.skippedNonFinite ? `, ${s.skippedNonFinite} non-finite weights skipped` : ''}\n` +
      perBlock +
      report.notes.map((n) => `note: ${n}\n`).join('') +
      (files.length ? `report: ${files.join(', ')}\n` : ''),
  );
}
