import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../../proto/errors.js';
import { writeFileAtomic } from '../../worker/io/atomic-write.js';
import type { EmergencePoint } from '../analysis/emergence.js';
import type { AnalyzeReport } from '../analysis/model-analysis.js';
import { lineChart } from './svg-chart.js';

async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new InputError(`${dir}: cannot create the output directory (${(err as Error).message})`, { cause: err });
  }
}

const sampleLabel = (s: number | 'full') => (s === 'full' ? 'full NIN' : `sample ${s}`);

/** report.json, spectrum.svg (f against alpha per sample) and tau.svg (tau against q). */
export async function writeAnalyzeReport(dir: string, report: AnalyzeReport): Promise<string[]> {
  await ensureDir(dir);
  const files = ['report.json', 'spectrum.svg', 'tau.svg'].map((f) => join(dir, f));
  const name = `${report.model} (${report.layout})`;
  await writeFileAtomic(files[0], JSON.stringify(report, null, 2) + '\n');
  await writeFileAtomic(
    files[1],
    lineChart(
      report.samples.map((s) => ({ label: sampleLabel(s.sample), x: s.alpha, y: s.f })),
      { title: `f(alpha) — ${name}`, xLabel: 'alpha', yLabel: 'f(alpha)' },
    ),
  );
  await writeFileAtomic(
    files[2],
    lineChart(
      report.samples.map((s) => ({ label: sampleLabel(s.sample), x: s.q, y: s.tau })),
      { title: `tau(q) — ${name}`, xLabel: 'q', yLabel: 'tau(q)' },
    ),
  );
  return files;
}

/** report.json, emergence.csv and emergence.svg of an emergence curve. */
export async function writeEmergenceReport(dir: string, result: { checkpoints: EmergencePoint[] } & Record<string, unknown>): Promise<string[]> {
  await ensureDir(dir);
  const files = ['report.json', 'emergence.csv', 'emergence.svg'].map((f) => join(dir, f));
  const cp = result.checkpoints;
  const cell = (v: number | null) => (v === null ? '' : String(v));
  const csv = [
    // commit: the hub commit a checkpoint was read at (empty for a local one).
    'label,model,E,alpha0_mean,alpha0_std,width_mean,width_std,samples_kept,commit',
    ...cp.map((c) =>
      [JSON.stringify(c.label), JSON.stringify(c.model), cell(c.E), cell(c.alpha0.mean), cell(c.alpha0.std), cell(c.width.mean), cell(c.width.std), c.alpha0.samples.length, c.commit ?? ''].join(','),
    ),
  ].join('\n');
  await writeFileAtomic(files[0], JSON.stringify(result, null, 2) + '\n');
  await writeFileAtomic(files[1], csv + '\n');
  await writeFileAtomic(
    files[2],
    lineChart([{ label: 'E', x: cp.map((_, i) => i), y: cp.map((c) => c.E ?? NaN) }], {
      title: 'Emergence across checkpoints',
      xLabel: 'checkpoint',
      yLabel: 'E',
      xTicks: cp.map((c) => c.label),
    }),
  );
  return files;
}
