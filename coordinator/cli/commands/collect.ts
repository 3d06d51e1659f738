import type { Command } from 'commander';
import { addQueueFlags } from '../queue-flags.js';
import { runFrom, type CommandSpec } from './common.js';

export const collectCommand = {
  name: 'collect',
  summary: "finish a JetStream run from any machine: runs the run's command again, taking every result its shards stored (nothing stored is recomputed)",
  configure(cmd: Command) {
    addQueueFlags(cmd);
  },
  run: runFrom(() => import('./collect-run.js')),
} satisfies CommandSpec;
