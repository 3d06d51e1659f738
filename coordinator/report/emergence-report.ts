import type { MfaParams } from '../../proto/shard.js';
import type { EmergencePoint, FilterMode, SampleRecord } from '../analysis/emergence.js';
import type { SeriesIntegrity } from '../analysis/emergence-series.js';
import { toCsv, type CsvCell } from './csv.js';
import { emergenceFigures } from './emergence-figures.js';
import { figureSubtitle, modelName, pageMeta, seriesName, type RunDescription, type RunInfo } from './figure-meta.js';
import { escapeHtml, type ReportFigure, type ReportPage, type ReportSection } from './html-report.js';

/** What `emergence --json` prints and report.json holds. Other commands' additions ride along. */
export interface EmergenceResult extends RunInfo {
  layout: string;
  mode: 'sampled' | 'full';
  layerSample: number | null;
  filter: FilterMode;
  params: MfaParams;
  checkpoints: EmergencePoint[];
  perCheckpoint: Array<{ label: string; step: number | null; commit?: string; sha256?: Record<string, string>; samples: SampleRecord[]; stats: unknown; cachedSamples: number }>;
  integrity: SeriesIntegrity;
  [more: string]: unknown;
}

export const runOf = (r: EmergenceResult): RunDescription => ({
  mode: r.mode,
  layerSample: r.layerSample,
  samples: r.perCheckpoint[0]?.samples.map((s) => s.sample) ?? [],
  params: r.params,
  filter: r.filter,
});

/** emergence.csv: one row per checkpoint, the parameters repeated so a concatenation of runs stays tidy. */
export function emergenceCsv(r: EmergenceResult): string {
  const cp = r.checkpoints;
  const hasStep = cp.some((c) => c.step !== null);
  const hasCommit = cp.some((c) => c.commit);
  const full = r.mode === 'full';
  const p = r.params;
  const columns = [
    'label',
    ...(hasStep ? ['step'] : []),
    'model',
    'E',
    'E_std',
    'alpha0_mean',
    'alpha0_std',
    'width_mean',
    'width_std',
    'samples_kept',
    'samples_total',
    'mode',
    ...(full ? [] : ['layer_sample']),
    'threshold',
    'decimals',
    'min_neighbors',
    'q_min',
    'q_max',
    'q_count',
    'filter',
    ...(hasCommit ? ['commit'] : []),
  ];
  const rows = cp.map((c, i): CsvCell[] => [
    c.label,
    ...(hasStep ? [c.step] : []),
    c.model,
    c.E,
    c.EStd,
    c.alpha0.mean,
    c.alpha0.std,
    c.width.mean,
    c.width.std,
    c.alpha0.samples.length,
    r.perCheckpoint[i]?.samples.length,
    r.mode,
    ...(full ? [] : [r.layerSample]),
    p.threshold,
    p.decimals,
    p.minNeighbors,
    p.q[0],
    p.q[p.q.length - 1],
    p.q.length,
    r.filter,
    ...(hasCommit ? [c.commit] : []),
  ]);
  return toCsv(columns, rows);
}

/** samples.csv: one row per checkpoint and sample, whether the filter kept it or not. */
export function samplesCsv(r: EmergenceResult): string {
  const hasStep = r.perCheckpoint.some((p) => p.step !== null);
  const rows = r.perCheckpoint.flatMap((p) => p.samples.map((s) => [p.label, ...(hasStep ? [p.step] : []), s.sample, s.alpha0, s.width, s.nodesSelected, s.kept]));
  return toCsv(['checkpoint', ...(hasStep ? ['step'] : []), 'sample', 'alpha0', 'width', 'nodes_selected', 'kept'], rows);
}

export function emergenceFigureSet(r: EmergenceResult): ReportFigure[] {
  const cp = r.checkpoints;
  const commits = cp.some((c) => c.commit) ? ' · commits in emergence.csv' : '';
  const what = `${seriesName(cp.map((c) => c.model))} · layout ${r.layout} · ${cp.length} checkpoints (${cp[0].label} … ${cp[cp.length - 1].label})${commits}`;
  return emergenceFigures({
    series: seriesName(cp.map((c) => c.model)),
    subtitle: figureSubtitle(what, runOf(r)),
    checkpoints: cp,
    samples: r.perCheckpoint.map((p) => p.samples),
  });
}

function integrityHtml(i: SeriesIntegrity): string {
  const items: string[] = [];
  for (const d of i.duplicates) {
    const what = d.reason === 'file-sha256' ? `hold the same weight files (${(d.files ?? []).join(', ')})` : 'read identical sampled weight bytes';
    items.push(`${d.expected ? 'expected' : 'duplicate'}: ${d.labels.join(', ')} ${what}${d.note ? ` — ${d.note}` : ''}`);
  }
  if (i.excluded.length) items.push(`left out of E: ${i.excluded.join(', ')}`);
  for (const m of i.missing) items.push(`missing: ${m.label} (${m.reason})`);
  if (items.length === 0) items.push('no duplicate or missing checkpoint found');
  return `<ul>${items.map((t) => `<li>${escapeHtml(t)}</li>`).join('')}</ul>`;
}

/** Every label of a short series; the first and last five of a long one (154 for Pythia). */
const labelList = (labels: string[]) => (labels.length <= 12 ? labels.join(', ') : `${labels.slice(0, 5).join(', ')}, …, ${labels.slice(-5).join(', ')}`);

export function emergencePage(r: EmergenceResult, figures: ReportFigure[], extra: ReportSection[]): ReportPage {
  const cp = r.checkpoints;
  const series = seriesName(cp.map((c) => c.model));
  const hasCommit = cp.some((c) => c.commit);
  const byName = (n: string) => figures.filter((f) => f.name === n);
  return {
    title: `neuromfa emergence — ${series}`,
    meta: pageMeta({ series, layout: r.layout, checkpoints: `${cp.length} (${labelList(cp.map((c) => c.label))})`, mode: r.mode }, runOf(r), r),
    sections: [
      {
        heading: 'Emergence across training',
        figures: [...byName('emergence'), ...byName('alpha0-width'), ...byName('spectra')],
        tables: [
          {
            caption: 'Checkpoints',
            csv: 'emergence.csv',
            columns: ['checkpoint', 'step', 'E', 'E std', 'alpha0', 'alpha0 std', 'width', 'width std', 'samples kept', ...(hasCommit ? ['commit'] : [])],
            rows: cp.map((c) => [c.label, c.step, c.E, c.EStd, c.alpha0.mean, c.alpha0.std, c.width.mean, c.width.std, c.alpha0.samples.length, ...(hasCommit ? [c.commit?.slice(0, 12) ?? null] : [])]),
          },
        ],
      },
      {
        heading: 'Integrity of the series',
        tables: [
          {
            caption: 'Checkpoints read',
            columns: ['checkpoint', 'model', 'commit', 'sampled bytes sha256'],
            rows: r.integrity.checkpoints.map((c) => [c.label, modelName(c.model), c.commit ?? null, c.sampledSha256?.slice(0, 16) ?? null]),
          },
        ],
        html: integrityHtml(r.integrity),
      },
      ...extra,
      {
        heading: 'Samples',
        tables: [
          {
            caption: 'Every sample of every checkpoint (kept: passed --filter)',
            csv: 'samples.csv',
            columns: ['checkpoint', 'sample', 'alpha0', 'width', 'nodes selected', 'kept'],
            rows: r.perCheckpoint.flatMap((p) => p.samples.map((s) => [p.label, String(s.sample), s.alpha0, s.width, s.nodesSelected, s.kept ? 'yes' : 'no'])),
          },
        ],
        html: '<p>Full results, with every spectrum: <a href="report.json">report.json</a>.</p>',
      },
    ],
  };
}
