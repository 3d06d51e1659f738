import type { Command } from 'commander';
import { runFrom, type CommandSpec } from './common.js';

export const ninCommand = {
  name: 'nin',
  summary: "write the reference's sampled NIN edge list of a checkpoint as .npy",
  configure(cmd: Command) {
    cmd.argument('<model>', 'checkpoint directory (config.json + model.safetensors or its sharded index) or a .safetensors file');
    cmd.requiredOption('--sample <s>', 'sample index (the NumPy seed of the sample sets)');
    cmd.option('--layer-sample <k>', 'neurons sampled per layer', '32');
    cmd.requiredOption('--out <file.npy>', 'where to write the float64 (E, 3) edge list');
    cmd.option('--plan', 'also print the drawn sample sets as JSON');
  },
  run: runFrom(() => import('./nin-run.js')),
} satisfies CommandSpec;
