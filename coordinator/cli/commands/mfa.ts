import type { Command } from 'commander';
import { addBackendFlag } from './analyze.js';
import { addAnalysisFlags, addRunFlags, runFrom, type CommandSpec } from './common.js';

export const mfaCommand = {
  name: 'mfa',
  summary: 'multifractal spectrum of an edge list (.npy float64 (E,3) or CSV src,dst,weight)',
  configure(cmd: Command) {
    cmd.argument('<edges>', 'edge list: .npy float64 array of shape (E, 3) rows [src, dst, w], or .csv src,dst,weight');
    addAnalysisFlags(cmd);
    addBackendFlag(cmd, false);
    addRunFlags(cmd);
  },
  run: runFrom(() => import('./mfa-run.js')),
} satisfies CommandSpec;
