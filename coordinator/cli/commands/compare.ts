import type { Command } from 'commander';
import { runFrom, type CommandSpec } from './common.js';

export const compareCommand = {
  name: 'compare',
  summary: 'several emergence runs side by side: E against step, and E at one step against model size',
  configure(cmd: Command) {
    cmd.argument('<runs...>', 'emergence --out directories (or their report.json files)');
    cmd.option('--step <n>', 'the training step E is compared at across sizes (default: the largest step every run has)');
    cmd.option('--names <list>', 'comma-separated name per run (default: the hub repository, else the directory name)');
    cmd.option('--out <dir>', 'write compare.csv, compare-size.csv, the compare-emergence and compare-size figures and report.html here');
    cmd.option('--json', 'print only JSON on stdout');
  },
  run: runFrom(() => import('./compare-run.js')),
} satisfies CommandSpec;
