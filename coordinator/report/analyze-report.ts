import type { AnalyzeReport } from '../analysis/model-analysis.js';
import { analyzeFigures } from './analyze-figures.js';
import { toCsv } from './csv.js';
import { figureSubtitle, modelName, pageMeta, type RunDescription, type RunInfo } from './figure-meta.js';
import { escapeHtml, type ReportFigure, type ReportPage, type ReportSection } from './html-report.js';

/** What `analyze --json` prints and report.json holds. */
export type AnalyzeResult = AnalyzeReport & RunInfo;

const runOf = (r: AnalyzeResult): RunDescription => ({ mode: r.mode, layerSample: r.layerSample, samples: r.samples.map((s) => s.sample), params: r.params });

export function analyzeSamplesCsv(r: AnalyzeResult): string {
  return toCsv(
    ['model', 'sample', 'alpha0', 'width', 'nodes_selected', 'radii'],
    r.samples.map((s) => [modelName(r.model), s.sample, s.alpha0, s.width, s.nodesSelected, s.radii.length]),
  );
}

export function analyzeFigureSet(r: AnalyzeResult): ReportFigure[] {
  const name = modelName(r.model);
  const what = `${name} · ${r.architecture}, layout ${r.layout}${r.commit ? ` · commit ${r.commit.slice(0, 12)}` : ''}`;
  return analyzeFigures({ model: name, subtitle: figureSubtitle(what, runOf(r)), samples: r.samples });
}

export function analyzePage(r: AnalyzeResult, figures: ReportFigure[], extra: ReportSection[]): ReportPage {
  const name = modelName(r.model);
  return {
    title: `neuromfa analyze — ${name}`,
    meta: pageMeta({ model: r.model, architecture: r.architecture, layout: r.layout, ...(r.commit ? { commit: r.commit } : {}), mode: r.mode }, runOf(r), r),
    sections: [
      {
        heading: 'Multifractal spectrum',
        figures,
        tables: [
          {
            caption: 'Samples',
            csv: 'samples.csv',
            columns: ['sample', 'alpha0', 'width', 'nodes selected', 'radii'],
            rows: [
              ...r.samples.map((s) => [String(s.sample), s.alpha0, s.width, s.nodesSelected, s.radii.length]),
              ['mean', r.mean.alpha0, r.mean.width, null, null],
              ['std', r.std.alpha0, r.std.width, null, null],
            ],
          },
        ],
        html: r.notes.map((n) => `<p>note: ${escapeHtml(n)}</p>`).join('') + '<p>Full results, with every spectrum: <a href="report.json">report.json</a>.</p>',
      },
      ...extra,
    ],
  };
}
