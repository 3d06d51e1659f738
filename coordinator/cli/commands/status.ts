import type { Command } from 'commander';
import { addQueueFlags } from '../queue-flags.js';
import { runFrom, type CommandSpec } from './common.js';

export const statusCommand = {
  name: 'status',
  summary: "a JetStream run's progress, read from the server without joining or changing the run",
  configure(cmd: Command) {
    addQueueFlags(cmd);
    cmd.option('--json', 'print only JSON on stdout');
  },
  run: runFrom(() => import('./status-run.js')),
} satisfies CommandSpec;
