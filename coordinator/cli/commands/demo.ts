import type { Command } from 'commander';
import { runFrom, type CommandSpec } from './common.js';

export const demoCommand = {
  name: 'demo',
  summary: 'build a small synthetic GPT-NeoX training series and compute its emergence curve',
  configure(cmd: Command) {
    cmd.option('--dir <dir>', 'where to write the checkpoints and report (default: a new temporary directory)');
    cmd.option('--threads <n>', 'worker threads (default: all cores)');
  },
  run: runFrom(() => import('./demo-run.js')),
} satisfies CommandSpec;
