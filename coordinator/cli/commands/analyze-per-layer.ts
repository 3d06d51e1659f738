import type { AnalyzeReport } from '../../analysis/model-analysis.js';
import { figureSubtitle, modelName } from '../../report/figure-meta.js';
import type { ReportSection } from '../../report/html-report.js';
import { analyzePerLayerOutputs, blockMeans } from '../../report/per-layer-report.js';
import { table } from '../format.js';

/** `analyze --per-layer --out DIR`: per-layer.csv and the per-block figures, and the report section. */
export function perLayerOutputs(dir: string, r: AnalyzeReport): Promise<{ files: string[]; section: ReportSection }> {
  const name = modelName(r.model);
  const what = `${name} · ${r.architecture}, layout ${r.layout}${r.commit ? ` · commit ${r.commit.slice(0, 12)}` : ''}`;
  return analyzePerLayerOutputs(dir, r, name, figureSubtitle(what, { mode: r.mode, layerSample: r.layerSample, samples: r.samples.map((s) => s.sample), params: r.params }));
}

const num = (v: number | null) => (v === null ? '-' : v.toFixed(6));

/** The per-block table on the terminal: mean (std) over samples. */
export function perLayerText(r: AnalyzeReport): string {
  return (
    'per block (mean over samples, population std):\n' +
    table(
      ['block', 'alpha0', 'std', 'width', 'std', 'samples'],
      blockMeans(r).map((m) => [String(m.block), num(m.alpha0.mean), num(m.alpha0.std), num(m.width.mean), num(m.width.std), String(m.samples)]),
    )
  );
}
