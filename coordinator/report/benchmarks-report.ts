import { join } from 'node:path';
import { writeFileAtomic } from '../../worker/io/atomic-write.js';
import type { BenchmarkCorrelation, TaskCorrelation } from '../analysis/benchmarks.js';
import type { EmergencePoint } from '../analysis/emergence.js';
import { toCsv } from './csv.js';
import { r6 } from './figure-style.js';
import { writeFigure } from './figure.js';
import { escapeHtml, type ReportSection } from './html-report.js';
import { ensureOutDir } from './out-dir.js';
import { benchmarkScatterSpec, benchmarkStepsSpec, type ScatterRow } from './specs/correlation.js';
import { stepAxis } from './step-axis.js';

/** correlations.csv: one row per task and shot count; empty cells where a value is undefined. */
export function correlationsCsv(c: BenchmarkCorrelation): string {
  const columns = ['task', 'shots', 'metric', 'n', 'pearson_r', 'pearson_p', 'pearson_ci_low', 'pearson_ci_high', 'spearman_rho', 'spearman_p', 'spearman_ci_low', 'spearman_ci_high'];
  return toCsv(
    columns,
    c.correlations.map((r) => [r.task, r.shots, r.metric, r.n, r.pearson.value, r.pearson.p, r.pearson.ci?.low, r.pearson.ci?.high, r.spearman.value, r.spearman.p, r.spearman.ci?.low, r.spearman.ci?.high]),
  );
}

/** benchmarks.csv: every matched pair, tidy (checkpoint, step, task, shots, metric, score, E). */
export function benchmarkPairsCsv(c: BenchmarkCorrelation): string {
  return toCsv(
    ['checkpoint', 'step', 'task', 'shots', 'metric', 'score', 'E'],
    c.correlations.flatMap((r) => r.points.map((p) => [p.label, p.step, r.task, r.shots, r.metric, p.score, p.E])),
  );
}

export const taskName = (r: TaskCorrelation) => `${r.task}${r.shots === null ? '' : ` (${r.shots}-shot)`}`;
const fmt = (v: number | null) => (v === null ? 'n/a' : v.toFixed(3));
const pFmt = (p: number | null) => (p === null ? 'n/a' : p < 1e-4 ? p.toExponential(1) : p.toFixed(4));
/** `arc_easy (0-shot), n = 27|r = 0.953 (p 1.9e-14)|rho = 0.886 (p 8.2e-10)`: one header line per `|`. */
export const panelName = (r: TaskCorrelation) => `${taskName(r)}, n = ${r.n}|Pearson r = ${fmt(r.pearson.value)} (p ${pFmt(r.pearson.p)})|Spearman rho = ${fmt(r.spearman.value)} (p ${pFmt(r.spearman.p)})`;

/**
 * `emergence --benchmarks`: correlations.csv, benchmarks.csv, the benchmarks figure (E and
 * score against step per task) and benchmarks-scatter (score against E), and their section.
 */
export async function benchmarkOutputs(dir: string, c: BenchmarkCorrelation, checkpoints: readonly EmergencePoint[], title: string, subtitle: string[]): Promise<{ files: string[]; section: ReportSection }> {
  await ensureOutDir(dir);
  const files = [join(dir, 'correlations.csv'), join(dir, 'benchmarks.csv')];
  await writeFileAtomic(files[0], correlationsCsv(c));
  await writeFileAtomic(files[1], benchmarkPairsCsv(c));
  const withStep = checkpoints.filter((p): p is EmergencePoint & { step: number } => p.step !== null);
  const steps = [...new Set([...withStep.map((p) => p.step), ...c.correlations.flatMap((r) => r.scores.map((s) => s.step))])].sort((a, b) => a - b);
  const axis = stepAxis(steps.map(String), steps);
  const E = withStep.map((p) => ({ label: p.label, step: p.step, E: r6(p.E) }));
  const tasks = c.correlations.map((r) => ({ name: taskName(r), metric: r.metric, E, scores: r.scores.map((s) => ({ step: s.step, score: r6(s.score) })) }));
  const stepsSpec = benchmarkStepsSpec(`E and benchmark scores across training — ${title}`, subtitle, tasks, axis);
  const panels = c.correlations.map(panelName);
  const rows: ScatterRow[] = c.correlations.flatMap((r, i) => r.points.map((p) => ({ panel: panels[i], label: p.label, step: p.step, E: r6(p.E), score: r6(p.score) })));
  // Coloured by the checkpoints' own steps: the scores may reach far beyond the series.
  const own = withStep.map((p) => p.step);
  const scatter = benchmarkScatterSpec(`Benchmark score against E — ${title}`, subtitle, rows, panels, c.metric, stepAxis(own.map(String), own));
  files.push(...(await writeFigure(dir, 'benchmarks', stepsSpec)), ...(await writeFigure(dir, 'benchmarks-scatter', scatter)));
  const b = c.bootstrap;
  return {
    files,
    section: {
      heading: 'E and benchmark scores',
      figures: [
        { name: 'benchmarks', spec: stepsSpec, caption: `E (solid, left axis) and ${c.metric} (dashed, right axis) against training step, per task, from ${c.source}.` },
        { name: 'benchmarks-scatter', spec: scatter, caption: `${c.metric} against E at the checkpoints that have both (matched by training step), coloured by step.` },
      ],
      tables: [
        {
          caption: 'Correlation of E with each benchmark',
          csv: 'correlations.csv',
          columns: ['task', 'shots', 'n', 'Pearson r', 'p', '95% CI', 'Spearman rho', 'p', '95% CI'],
          rows: c.correlations.map((r) => [r.task, r.shots, r.n, r.pearson.value, r.pearson.p, ci(r.pearson.ci), r.spearman.value, r.spearman.p, ci(r.spearman.ci)]),
        },
      ],
      html:
        `<p>p: two-sided, from Student's t with n − 2 degrees of freedom (as SciPy's pearsonr and spearmanr). 95% CI: percentile bootstrap over checkpoints, ${b.resamples} resamples, MT19937 seed ${b.seed} (the same inputs give the same interval). Every matched pair: <a href="benchmarks.csv">benchmarks.csv</a>.</p>` +
        (c.unmatched.length ? `<p>Checkpoints without a score at their step: ${escapeHtml(c.unmatched.join(', '))}.</p>` : ''),
    },
  };
}

const ci = (i: { low: number; high: number } | null) => (i === null ? null : `[${i.low.toFixed(3)}, ${i.high.toFixed(3)}]`);
