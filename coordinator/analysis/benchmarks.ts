import { InputError, UsageError } from '../../proto/errors.js';
import type { BenchmarkScore } from './benchmarks-read.js';
import { bootstrapInterval, correlationPValue, pearson, spearman, type Interval } from './stats.js';

/**
 * E against benchmark scores: checkpoints are matched to scores by training step, and for
 * each task (and shot count) the pairs (E, score) give Pearson's and Spearman's coefficients
 * with p-values and seeded bootstrap intervals.
 */

/** The tasks the reference plots, used when --tasks is not given (those present). */
export const DEFAULT_TASKS = ['lambada_openai', 'piqa', 'arc_easy', 'arc_challenge'];
export const BOOTSTRAP = { resamples: 10000, seed: 0, level: 0.95 } as const;

export interface CheckpointE {
  label: string;
  /** The step its label names (EmergencePoint.step); null never matches a score. */
  step: number | null;
  E: number | null;
}

export interface Coefficient {
  value: number | null;
  p: number | null;
  /** Percentile bootstrap interval over resampled checkpoints. */
  ci: Interval | null;
}

export interface TaskCorrelation {
  task: string;
  shots: number | null;
  metric: string;
  /** Checkpoints with both E and a score. */
  n: number;
  pearson: Coefficient;
  spearman: Coefficient;
  points: Array<{ label: string; step: number; E: number; score: number }>;
  /** Every score of this task, matched or not, by step (the score curve of the figure). */
  scores: Array<{ step: number; score: number }>;
}

export interface BenchmarkCorrelation {
  source: string;
  metric: string;
  tasks: string[];
  bootstrap: typeof BOOTSTRAP;
  /** Checkpoints whose label names no step, or whose step has no score: not in any pair. */
  unmatched: string[];
  correlations: TaskCorrelation[];
}

function coefficient(E: Float64Array, s: Float64Array, stat: typeof pearson): Coefficient {
  const value = stat(E, s);
  return {
    value,
    p: value === null ? null : correlationPValue(value, E.length),
    ci: value === null ? null : bootstrapInterval(E, s, stat, BOOTSTRAP),
  };
}

/** The tasks to correlate: `wanted` (each must be present), or the default ones present. */
export function pickTasks(scores: readonly BenchmarkScore[], wanted: string[] | undefined, source: string): string[] {
  const present = [...new Set(scores.map((s) => s.task))];
  if (wanted) {
    const absent = wanted.filter((t) => !present.includes(t));
    if (absent.length) throw new UsageError(`--tasks: ${absent.join(', ')} not in ${source} (it has ${present.length} tasks, e.g. ${present.slice(0, 6).join(', ')})`);
    return wanted;
  }
  const tasks = DEFAULT_TASKS.filter((t) => present.includes(t));
  if (tasks.length === 0) throw new InputError(`${source}: none of the default tasks ${DEFAULT_TASKS.join(', ')}; name some with --tasks (it has ${present.slice(0, 6).join(', ')}${present.length > 6 ? ', …' : ''})`);
  return tasks;
}

export function correlateBenchmarks(checkpoints: readonly CheckpointE[], scores: readonly BenchmarkScore[], tasks: string[], source: string): BenchmarkCorrelation {
  const metric = scores[0]?.metric ?? 'acc';
  const steps = new Set(scores.filter((s) => tasks.includes(s.task)).map((s) => s.step));
  const unmatched = checkpoints.filter((c) => c.step === null || !steps.has(c.step)).map((c) => c.label);
  const correlations: TaskCorrelation[] = [];
  for (const task of tasks) {
    const shotCounts = [...new Set(scores.filter((s) => s.task === task).map((s) => s.shots))].sort((a, b) => (a ?? -1) - (b ?? -1));
    for (const shots of shotCounts) {
      const byStep = new Map(scores.filter((s) => s.task === task && s.shots === shots).map((s) => [s.step, s.value]));
      const points = checkpoints.flatMap((c) => (c.E !== null && c.step !== null && byStep.has(c.step) ? [{ label: c.label, step: c.step, E: c.E, score: byStep.get(c.step)! }] : []));
      const E = Float64Array.from(points, (p) => p.E);
      const s = Float64Array.from(points, (p) => p.score);
      correlations.push({ task, shots, metric, n: points.length, pearson: coefficient(E, s, pearson), spearman: coefficient(E, s, spearman), points, scores: [...byStep].sort((a, b) => a[0] - b[0]).map(([step, score]) => ({ step, score })) });
    }
  }
  return { source, metric, tasks, bootstrap: BOOTSTRAP, unmatched, correlations };
}
