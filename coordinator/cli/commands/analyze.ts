import type { ShardBackend } from '../../../worker/backends/shard-backend.js';
import type { Command } from 'commander';
import { UsageError } from '../../../proto/errors.js';
import { analyzeModel, type AnalyzeOptions } from '../../analysis/model-analysis.js';
import { runInfo } from '../../report/figure-meta.js';
import { writeAnalyzeReport } from '../../report/write-reports.js';
import { json, threadsFrom, withBackend, type CliContext } from '../context.js';
import { mfaParams, parseInteger, parseSamples, parseShardMb } from '../flags.js';
import { table } from '../format.js';
import { addAnalysisFlags, addRunFlags, type CommandSpec } from './common.js';
import { addClusterFlags } from '../remote-backend.js';
import { checkOutputDirectory } from '../../../worker/io/atomic-write.js';
import { perLayerOutputs, perLayerText } from './analyze-per-layer.js';

/** Options shared by analyze and emergence. */
export function addModelFlags(cmd: Command): void {
  cmd.option('--samples <list>', 'sample indices, e.g. 0-9 or 0,3,5 (default: 0-9, as the reference)');
  cmd.option('--full', 'every neuron of every layout matrix instead of samples');
  cmd.option('--layer-sample <k>', 'neurons sampled per layer (32 in the paper)', '32');
  addAnalysisFlags(cmd);
  addRunFlags(cmd);
  cmd.option('--shard-mb <n>', 'full NIN: at most this many MB of weights per shard', '32');
  cmd.option('--per-layer', "also each block's spectrum (tau(q), alpha0, width) from the same shards' sums kept per block; per-layer.csv and figures with --out");
  cmd.option('--progress', 'report progress as plain lines on stderr (every 10 s and per checkpoint) when stderr is not a terminal, e.g. in batch jobs or kubectl logs');
}

/**
 * `--backend` of the embedded pool (mfa, analyze); withBackend resolves it. Its default is
 * f64 on both: their numbers are the reference's to 1e-9, which float32 kernels do not keep.
 */
export function addBackendFlag(cmd: Command, remote: boolean): void {
  cmd.option(
    '--backend <name>',
    'where partition sums run: f64 (float64 CPU: the reference, to 1e-9), auto (the first of webgpu, gl that works here, else f64), ' +
      'or a gpu.js mode in float32 (partition sums within 3e-7 relative of f64, tau within 1e-6 on every conformance case): webgpu (Dawn over Vulkan), gl (headless WebGL), webasm (WebAssembly), cpu (gpu.js in JavaScript, for tests). ' +
      'A backend that cannot run here is an error before any work (exit 2); a GPU that fails mid-shard falls back to f64 for that shard' +
      (remote ? '; with --workers or --nats each worker uses its own --backend' : '') +
      ' (default: f64)',
  );
}

/**
 * Workers read weight files under their own --model-root, which never holds an hf:// file:
 * for a full NIN of a hub checkpoint the coordinator reads the hub and ships each shard's bytes.
 */
/**
 * With remote workers the workers read the checkpoints themselves (shards name the model:
 * coordinator/plan/worker-models.ts); --ship-bytes keeps the coordinator reading and sending
 * rows or bytes, for workers that can reach neither the models nor the hub.
 */
export function readOnWorkers(o: Record<string, string | boolean | undefined>, opts: AnalyzeOptions, backend: ShardBackend): AnalyzeOptions {
  if (!(o.workers || o.nats) || o.shipBytes) return opts;
  return { ...opts, workersRead: { modelRoot: o.modelRoot as string | undefined, pieces: Math.max(1, backend.workers ?? 1) } };
}

export function analyzeOptions(o: Record<string, string | boolean | undefined>, threads: number): AnalyzeOptions {
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

export const analyzeCommand = {
  name: 'analyze',
  summary: 'multifractal spectrum of a checkpoint: sampled NINs (the reference) or the full NIN',
  configure(cmd: Command) {
    cmd.argument('<model>', 'checkpoint directory (config.json + safetensors) or a .safetensors file');
    addModelFlags(cmd);
    addBackendFlag(cmd, true);
    addClusterFlags(cmd);
    cmd.option('--out <dir>', 'write report.json, samples.csv, the figures (spectrum, tau as .svg, .png and Vega-Lite .vl.json) and report.html here; finished shards are kept in DIR/shards as they arrive');
    cmd.option('--resume <dir>', 'continue a killed run whose --out was DIR, without recomputing its finished shards');
  },
  async run(ctx: CliContext, [model]: string[], o: Record<string, string | boolean | undefined>) {
    const threads = threadsFrom(o.threads as string | undefined);
    const opts = analyzeOptions(o, threads);
    if (o.resume && o.out && o.resume !== o.out) throw new UsageError('--resume DIR writes its report into DIR: leave out --out, or give the same directory');
    const out = (o.resume ?? o.out) as string | undefined;
    if (out) opts.journal = { dir: out, resume: Boolean(o.resume) };
    if (out) await checkOutputDirectory(out);
    const report = { ...runInfo(), ...(await withBackend(ctx, threads, 'analyze', (b, l) => analyzeModel(model, readOnWorkers(o, opts, b), b, l), o)) };
    const layers = out && opts.perLayer ? await perLayerOutputs(out, report) : undefined;
    const files = out ? [...(await writeAnalyzeReport(out, report, layers ? [layers.section] : [])), ...(layers?.files ?? [])] : [];
    if (o.json) {
      ctx.out(json(report));
      return;
    }
    const s = report.stats;
    ctx.out(
      `${model}: ${report.architecture}, layout ${report.layout}, ${report.mode === 'full' ? 'full NIN' : `layer sample ${report.layerSample}`}${report.commit ? `, commit ${report.commit}` : ''}\n` +
        table(
          ['sample', 'alpha0', 'width', 'nodes selected', 'radii'],
          report.samples.map((r) => [String(r.sample), r.alpha0.toFixed(6), r.width.toFixed(6), String(r.nodesSelected), String(r.radii.length)]),
        ) +
        `mean alpha0 ${report.mean.alpha0.toFixed(6)} (std ${report.std.alpha0.toFixed(6)}), mean width ${report.mean.width.toFixed(6)} (std ${report.std.width.toFixed(6)})\n` +
        `${s.edges} edges, ${s.bytesRead} of ${s.fileBytes} bytes read (${((100 * s.bytesRead) / s.fileBytes).toFixed(2)}%)${s.requests ? ` in ${s.requests} HTTP requests` : ''}, ${s.seconds.toFixed(2)} s, ${(s.edges / s.seconds / 1e6).toFixed(1)}M edges/s` +
        `${s.skippedNonFinite ? `, ${s.skippedNonFinite} non-finite weights skipped` : ''}\n` +
        (opts.perLayer ? perLayerText(report) : '') +
        report.notes.map((n) => `note: ${n}\n`).join('') +
        (files.length ? `report: ${files.join(', ')}\n` : ''),
    );
  },
} satisfies CommandSpec;
