import type { Command } from 'commander';
import { addClusterFlags } from '../cluster-flags.js';
import { addBackendFlag, addModelFlags } from './analyze.js';
import { runFrom, type CommandSpec } from './common.js';

/** What `emergence` adds for research beyond the curve (emergence-research.ts computes it). */
export function addResearchFlags(cmd: Command): void {
  cmd.option(
    '--benchmarks <path>',
    'benchmark scores to correlate with E, matched by training step: lm-evaluation-harness result JSON (0.3 as Pythia publishes them, or 0.4+ results_<date>.json), a directory of them, or a CSV step,task,metric,value',
  );
  cmd.option('--tasks <list>', 'with --benchmarks: comma-separated tasks (default: lambada_openai, piqa, arc_easy, arc_challenge, those present)');
  cmd.option('--metric <name>', 'with --benchmarks: the score to read (acc, acc_norm, ...; 0.4 files: "acc,none")', 'acc');
  cmd.option('--nfd', 'also the node fractal dimensions of every checkpoint (the same samples, or --full; threshold 200, decimals 0) and their distribution across steps');
}

export const emergenceCommand = {
  name: 'emergence',
  summary: 'the emergence metric E across checkpoints; the first is the initial model',
  configure(cmd: Command) {
    cmd.argument('<models...>', 'checkpoints in training order (directories, files or hf://OWNER/NAME@REV); MODEL_0 is the initial checkpoint');
    cmd.option(
      '--revisions <list>',
      'with one hf://OWNER/NAME: its revisions in training order, a comma list (step0,step1000,main) or "all" for every step<N> branch in numeric order ("all,main" adds main)',
    );
    cmd.option(
      '--keep-duplicates',
      'keep checkpoints whose weight files (any file, one shard is enough) or sampled weight bytes equal an earlier one in E; by default they are reported and left out',
    );
    cmd.option('--labels <list>', 'comma-separated label per checkpoint (default: directory names; hub revisions: the revision)');
    cmd.option('--filter <mode>', 'sample filter: 0 none, 1 drop f > 0, 2 drop alpha rising > 0.01, 3 both', '0');
    cmd.option('--sort', 'local checkpoints whose labels carry step numbers (step1000) are taken in step order; without it, another order is an error');
    cmd.option('--allow-mixed', 'allow local checkpoints of different architectures or hidden sizes in one series (by default an error)');
    addModelFlags(cmd);
    addResearchFlags(cmd);
    addBackendFlag(cmd, true);
    addClusterFlags(cmd);
    cmd.option('--out <dir>', 'write report.json, emergence.csv, samples.csv, the figures (emergence, spectra, alpha0-width as .svg, .png and Vega-Lite .vl.json) and report.html here');
  },
  run: runFrom(() => import('./emergence-run.js')),
} satisfies CommandSpec;
