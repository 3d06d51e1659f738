import { join } from 'node:path';
import { writeFileAtomic } from '../../worker/io/atomic-write.js';
import { VERSION } from '../../worker/version.js';
import type { ComparedRun, SizePoint } from '../analysis/compare.js';
import { toCsv } from './csv.js';
import type { RunInfo } from './figure-meta.js';
import { r6 } from './figure-style.js';
import { writeFigure } from './figure.js';
import { escapeHtml, writeHtmlReport } from './html-report.js';
import { ensureOutDir } from './out-dir.js';
import { compareSizeSpec, compareStepsSpec } from './specs/compare.js';
import { stepAxis } from './step-axis.js';

export interface Comparison {
  runs: ComparedRun[];
  step: number;
  atStep: SizePoint[];
  /** Runs without E at `step`. */
  missing: string[];
  /** Differences in mode, parameters or layout between the runs. */
  notes: string[];
}

/** compare.csv: every checkpoint of every run, tidy, with the run's model size. */
export function compareCsv(c: Comparison): string {
  return toCsv(
    ['run', 'checkpoint_parameters', 'layout_parameters', 'checkpoint', 'step', 'E', 'E_std'],
    c.runs.flatMap((r) => r.checkpoints.map((p) => [r.name, r.size.checkpointParameters, r.size.layoutParameters, p.label, p.step, p.E, p.EStd])),
  );
}

/** compare-size.csv: E of each run at the compared step, in increasing model size. */
export function compareSizeCsv(c: Comparison): string {
  return toCsv(
    ['run', 'checkpoint_parameters', 'layout_parameters', 'checkpoint', 'step', 'E', 'E_std'],
    c.atStep.map((p) => [p.name, p.checkpointParameters, p.layoutParameters, p.label, p.step, p.E, p.EStd]),
  );
}

const low = (E: number | null, s: number | null) => (E === null || s === null ? null : r6(E - s));
const high = (E: number | null, s: number | null) => (E === null || s === null ? null : r6(E + s));

export function compareFigures(c: Comparison) {
  const bySize = [...c.runs].sort((a, b) => a.size.checkpointParameters - b.size.checkpointParameters);
  const names = bySize.map((r) => r.name);
  const subtitle = [`${c.runs.length} runs: ${names.join(', ')}`, `from each run's report.json · neuromfa ${VERSION}`];
  const all = c.runs.flatMap((r) => r.checkpoints);
  const axis = stepAxis(all.map((p) => p.label), all.map((p) => p.step));
  const rows = c.runs.flatMap((r) => r.checkpoints.map((p) => ({ run: r.name, label: p.label, step: p.step, E: r6(p.E), ELow: low(p.E, p.EStd), EHigh: high(p.E, p.EStd) })));
  const steps = { name: 'compare-emergence', spec: compareStepsSpec('Emergence E across training, by model', subtitle, rows, names, axis), caption: 'E against training step for every run (bars: ± std of E over the kept samples).' };
  const sizeRows = c.atStep.map((p) => ({ run: p.name, parameters: p.checkpointParameters, layoutParameters: p.layoutParameters, E: r6(p.E), ELow: low(p.E, p.EStd), EHigh: high(p.E, p.EStd) }));
  const size = {
    name: 'compare-size',
    spec: compareSizeSpec(`E at step ${c.step} against model size`, subtitle, sizeRows, c.step),
    caption: `E at training step ${c.step} against the checkpoint's parameter count (every tensor; the NIN's own weights are in compare-size.csv).${c.missing.length ? ` Without E at that step: ${c.missing.join(', ')}.` : ''}`,
  };
  return [steps, size];
}

/** compare.csv, compare-size.csv, the two figures and report.html. */
export async function writeCompareReport(dir: string, c: Comparison, info: RunInfo): Promise<string[]> {
  await ensureOutDir(dir);
  const files = [join(dir, 'compare.csv'), join(dir, 'compare-size.csv')];
  await writeFileAtomic(files[0], compareCsv(c));
  await writeFileAtomic(files[1], compareSizeCsv(c));
  const figures = compareFigures(c);
  for (const f of figures) files.push(...(await writeFigure(dir, f.name, f.spec)));
  const page = {
    title: 'neuromfa compare',
    meta: { runs: c.runs.map((r) => `${r.name} (${r.path})`).join('; '), step: String(c.step), command: info.command, version: `neuromfa ${info.version}`, created: info.createdAt },
    sections: [
      {
        heading: 'Emergence by model',
        figures,
        tables: [
          {
            caption: `E at step ${c.step}`,
            csv: 'compare-size.csv',
            columns: ['run', 'parameters', 'NIN weights', 'checkpoint', 'E', 'E std'],
            rows: c.atStep.map((p) => [p.name, p.checkpointParameters, p.layoutParameters, p.label, p.E, p.EStd]),
          },
        ],
        html: c.notes.map((n) => `<p>note: ${escapeHtml(n)}</p>`).join('') + '<p>Every checkpoint of every run: <a href="compare.csv">compare.csv</a>.</p>',
      },
    ],
  };
  files.push(await writeHtmlReport(dir, page));
  return files;
}
