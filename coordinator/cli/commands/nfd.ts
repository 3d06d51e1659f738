import type { Command } from 'commander';
import { addRunFlags, runFrom, type CommandSpec } from './common.js';

/** The flags of `nfd MODEL` (nfd-model.ts); an edge list refuses them. */
export function addModelNfdFlags(cmd: Command): void {
  cmd.option('--samples <list>', 'MODEL: sample indices, e.g. 0-9 or 0,3,5 (default: 0-9)');
  cmd.option('--full', 'MODEL: every input neuron of every layout matrix instead of samples');
  // Defaults applied in modelNfdOptions, so that giving one of these with an edge list is seen.
  cmd.option('--layer-sample <k>', 'MODEL: neurons sampled per layer (default: 32)');
  cmd.option('--shard-mb <n>', 'MODEL --full: at most this many MB of stored weights per shard, decoded to float64 while it runs (default: 8)');
  cmd.option('--out <dir>', 'MODEL: write report.json, nfd.csv, the nfd-histogram figure and report.html here');
}

export const nfdCommand = {
  name: 'nfd',
  summary: 'node fractal dimension of every source node of an edge list, or of every neuron of a checkpoint',
  configure(cmd: Command) {
    cmd.argument('<input>', 'edge list (.npy float64 (E, 3) or .csv src,dst,weight), or MODEL: a checkpoint as analyze takes it (directory, .safetensors, .bin, hf://)');
    cmd.option('--threshold <T>', 'keep distances 1/|w| in (0, T]', '200');
    cmd.option('--decimals <p>', 'round distances to p decimals (0-6), half to even', '0');
    addRunFlags(cmd);
    addModelNfdFlags(cmd);
  },
  run: runFrom(() => import('./nfd-run.js')),
} satisfies CommandSpec;
