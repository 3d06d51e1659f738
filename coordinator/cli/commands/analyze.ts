import type { Command } from 'commander';
import { addClusterFlags } from '../cluster-flags.js';
import { addAnalysisFlags, addRunFlags, runFrom, type CommandSpec } from './common.js';

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
    'where partition sums run: f64 (float64 CPU: the reference, to 1e-9), auto (gl where it works here, else f64; webgpu only when named: slower than f64 in whole runs on an H200), ' +
      'or a gpu.js mode in float32 (partition sums within 3e-7 relative of f64, tau within 1e-6 on every conformance case): webgpu (Dawn over Vulkan), gl (headless WebGL), webasm (WebAssembly), cpu (gpu.js in JavaScript, for tests). ' +
      'A backend that cannot run here is an error before any work (exit 2); a GPU that fails mid-shard falls back to f64 for that shard' +
      (remote ? '; with --workers or --nats each worker uses its own --backend' : '') +
      ' (default: f64)',
  );
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
  run: runFrom(() => import('./analyze-run.js')),
} satisfies CommandSpec;
