import { join } from 'node:path';
import { writeFileAtomic } from '../../worker/io/atomic-write.js';
import type { NfdSeries } from '../analysis/nfd-series.js';
import { toCsv } from './csv.js';
import { r6 } from './figure-style.js';
import { writeFigure } from './figure.js';
import type { ReportSection } from './html-report.js';
import { ensureOutDir } from './out-dir.js';
import { nfdViolinSpec, type NfdDensityRow } from './specs/nfd.js';
import { stepAxis } from './step-axis.js';

/** nfd-distribution.csv: one row per checkpoint, the summary of its NFDs (std: population). */
export function nfdDistributionCsv(s: NfdSeries): string {
  const hasStep = s.checkpoints.some((c) => c.step !== null);
  return toCsv(
    ['checkpoint', ...(hasStep ? ['step'] : []), 'nodes', 'zeros', 'mean', 'std', 'min', 'q25', 'median', 'q75', 'max', 'nfd_threshold', 'nfd_decimals'],
    s.checkpoints.map((c) => {
      const m = c.summary;
      return [c.label, ...(hasStep ? [c.step] : []), m.nodes, m.zeros, m.mean, m.std, m.min, m.q25, m.median, m.q75, m.max, s.params.threshold, s.params.decimals];
    }),
  );
}

/** The violin rows: per checkpoint, the share of its defined NFDs in each bin from its first to its last non-empty one. */
export function densityRows(s: NfdSeries): NfdDensityRow[] {
  const g = s.grid;
  if (!g) return [];
  const width = (g.hi - g.lo) / g.bins || 1;
  return s.checkpoints.flatMap((c, order) => {
    const total = c.counts.reduce((a, b) => a + b, 0);
    const first = c.counts.findIndex((n) => n > 0);
    if (first < 0) return [];
    const last = c.counts.length - 1 - [...c.counts].reverse().findIndex((n) => n > 0);
    return c.counts.slice(first, last + 1).map((n, k) => ({ label: c.label, step: c.step, order, nfd: r6(g.lo + (first + k + 0.5) * width)!, density: r6(n / total)! }));
  });
}

/** `emergence --nfd`: nfd-distribution.csv, the nfd-violin figure and their section. */
export async function nfdSeriesOutputs(dir: string, s: NfdSeries, title: string, subtitle: string[]): Promise<{ files: string[]; section: ReportSection }> {
  await ensureOutDir(dir);
  const csv = join(dir, 'nfd-distribution.csv');
  await writeFileAtomic(csv, nfdDistributionCsv(s));
  const cp = s.checkpoints;
  const axis = stepAxis(cp.map((c) => c.label), cp.map((c) => c.step));
  const medians = cp.map((c, order) => ({ label: c.label, step: c.step, order, median: r6(c.summary.median) }));
  const nfdSubtitle = [...subtitle.slice(0, -1), `${subtitle[subtitle.length - 1]} · NFD threshold ${s.params.threshold}, decimals ${s.params.decimals}`];
  const spec = nfdViolinSpec(`Node fractal dimensions across training — ${title}`, nfdSubtitle, densityRows(s), medians, axis);
  const files = [csv, ...(await writeFigure(dir, 'nfd-violin', spec))];
  return {
    files,
    section: {
      heading: 'Node fractal dimensions across training',
      figures: [
        {
          name: 'nfd-violin',
          spec,
          caption: `The distribution of each checkpoint's defined (non-zero) NFDs, as a violin per checkpoint (width: share of its neurons in each of ${s.grid?.bins ?? 0} bins shared by all), and the median against training step below.`,
        },
      ],
      tables: [
        {
          caption: 'NFD per checkpoint (std: population; zeros: nodes with NFD 0)',
          csv: 'nfd-distribution.csv',
          columns: ['checkpoint', 'step', 'nodes', 'zeros', 'mean', 'std', 'median', 'min', 'max'],
          rows: cp.map((c) => [c.label, c.step, c.summary.nodes, c.summary.zeros, c.summary.mean, c.summary.std, c.summary.median, c.summary.min, c.summary.max]),
        },
      ],
    },
  };
}
