import { join } from 'node:path';
import { writeFileAtomic } from '../../worker/io/atomic-write.js';
import type { AnalyzeReport } from '../analysis/model-analysis.js';
import type { PerLayerSeries } from '../analysis/per-layer-series.js';
import { toCsv } from './csv.js';
import { r6 } from './figure-style.js';
import { writeFigure } from './figure.js';
import type { ReportSection } from './html-report.js';
import { ensureOutDir } from './out-dir.js';
import { blockHeatmapSpec, blockProfileSpec, blockTauSpec, type BlockMeanRow } from './specs/per-layer.js';

/** A block's spectrum in one sample, or null where it has none. */
const spectrumOf = (s: AnalyzeReport['samples'][number], b: number) => {
  const x = s.blocks?.[b];
  return x && !('error' in x) ? x : null;
};

const meanStd = (v: number[]) => {
  if (v.length === 0) return { mean: null, std: null };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean, std: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length) };
};

/** per-layer.csv of `analyze --per-layer`: one row per sample and block (error: why a block has no spectrum). */
export function analyzePerLayerCsv(r: AnalyzeReport): string {
  const rows = r.samples.flatMap((s) =>
    (s.blocks ?? []).map((b) => ('error' in b ? [s.sample, b.block, null, null, null, null, b.error] : [s.sample, b.block, b.alpha0, b.width, b.nodesSelected, b.radii.length, null])),
  );
  return toCsv(['sample', 'block', 'alpha0', 'width', 'nodes_selected', 'radii', 'error'], rows);
}

/** Per block: mean and population std over samples of alpha0 and width. */
export function blockMeans(r: AnalyzeReport): Array<{ block: number; alpha0: ReturnType<typeof meanStd>; width: ReturnType<typeof meanStd>; samples: number }> {
  const blocks = r.samples[0]?.blocks?.length ?? 0;
  return Array.from({ length: blocks }, (_, b) => {
    const spectra = r.samples.map((s) => spectrumOf(s, b)).filter((x) => x !== null);
    return { block: b, alpha0: meanStd(spectra.map((x) => x.alpha0)), width: meanStd(spectra.map((x) => x.width)), samples: spectra.length };
  });
}

const band = (m: { mean: number | null; std: number | null }, sign: 1 | -1) => (m.mean === null ? null : r6(m.mean + sign * m.std!));

/** `analyze --per-layer`: per-layer.csv, the per-layer (alpha0, width by block) and per-layer-tau figures, and their section. */
export async function analyzePerLayerOutputs(dir: string, r: AnalyzeReport, title: string, subtitle: string[]): Promise<{ files: string[]; section: ReportSection }> {
  await ensureOutDir(dir);
  const csv = join(dir, 'per-layer.csv');
  await writeFileAtomic(csv, analyzePerLayerCsv(r));
  const means = blockMeans(r);
  const meanRows: BlockMeanRow[] = means.map((m) => ({ block: m.block, alpha0: r6(m.alpha0.mean), alpha0Low: band(m.alpha0, -1), alpha0High: band(m.alpha0, 1), width: r6(m.width.mean), widthLow: band(m.width, -1), widthHigh: band(m.width, 1) }));
  const sampleRows = r.samples.flatMap((s) => means.map(({ block }) => ({ sample: String(s.sample), block, alpha0: r6(spectrumOf(s, block)?.alpha0 ?? null), width: r6(spectrumOf(s, block)?.width ?? null) })));
  const profile = blockProfileSpec(`alpha0 and width per block — ${title}`, subtitle, sampleRows, meanRows);
  const tauRows = means.flatMap(({ block }) => {
    const spectra = r.samples.map((s) => spectrumOf(s, block)).filter((x) => x !== null);
    return spectra.length === 0 ? [] : r.params.q.map((q, k) => ({ block, q, tau: r6(spectra.reduce((a, x) => a + x.tau[k], 0) / spectra.length) }));
  });
  const tau = blockTauSpec(`tau(q) per block — ${title}`, subtitle, tauRows);
  const files = [csv, ...(await writeFigure(dir, 'per-layer', profile)), ...(await writeFigure(dir, 'per-layer-tau', tau))];
  return {
    files,
    section: {
      heading: 'Per-layer spectra',
      figures: [
        { name: 'per-layer', spec: profile, caption: "Each block's own spectrum: the partition sums of its nodes alone (the network's sums are their total). Grey: each sample; blue: mean ± population std over samples." },
        { name: 'per-layer-tau', spec: tau, caption: 'tau(q) of each block, averaged over samples.' },
      ],
      tables: [
        {
          caption: 'Per block (mean and std over samples)',
          csv: 'per-layer.csv',
          columns: ['block', 'alpha0', 'alpha0 std', 'width', 'width std', 'samples'],
          rows: means.map((m) => [m.block, m.alpha0.mean, m.alpha0.std, m.width.mean, m.width.std, m.samples]),
        },
      ],
    },
  };
}

/** per-layer.csv of `emergence --per-layer`: one row per checkpoint and block. */
export function emergencePerLayerCsv(p: PerLayerSeries): string {
  const hasStep = p.points.some((x) => x.step !== null);
  return toCsv(
    ['checkpoint', ...(hasStep ? ['step'] : []), 'block', 'E', 'alpha0_mean', 'alpha0_std', 'width_mean', 'width_std', 'samples'],
    p.points.map((x) => [x.label, ...(hasStep ? [x.step] : []), x.block, x.E, x.alpha0.mean, x.alpha0.std, x.width.mean, x.width.std, x.samples]),
  );
}

/** `emergence --per-layer`: per-layer.csv, the per-layer-heatmap figure (E and alpha0 by block and step) and its section. */
export async function emergencePerLayerOutputs(dir: string, p: PerLayerSeries, title: string, subtitle: string[]): Promise<{ files: string[]; section: ReportSection }> {
  await ensureOutDir(dir);
  const csv = join(dir, 'per-layer.csv');
  await writeFileAtomic(csv, emergencePerLayerCsv(p));
  const order = new Map<string, number>();
  for (const x of p.points) if (!order.has(x.label)) order.set(x.label, order.size);
  const rows = p.points.map((x) => ({ label: x.label, step: x.step, order: order.get(x.label)!, block: x.block, E: r6(x.E), alpha0: r6(x.alpha0.mean), width: r6(x.width.mean), samples: x.samples }));
  const spec = blockHeatmapSpec(`E and alpha0 per block across training — ${title}`, subtitle, rows);
  const files = [csv, ...(await writeFigure(dir, 'per-layer-heatmap', spec))];
  const last = [...order.keys()].pop();
  return {
    files,
    section: {
      heading: 'Per-layer emergence',
      figures: [
        {
          name: 'per-layer-heatmap',
          spec,
          caption: "Each block's E (top; E_b(t) = (w_b(t)/w_b(t0)) · ln(alpha0_b(t0)/alpha0_b(t)), from the block's own spectrum) and mean alpha0 (bottom), by block and checkpoint, over the samples --filter keeps.",
        },
      ],
      tables: [
        {
          caption: `Per block at the last checkpoint (${last}); every checkpoint in per-layer.csv`,
          csv: 'per-layer.csv',
          columns: ['block', 'E', 'alpha0', 'alpha0 std', 'width', 'width std', 'samples'],
          rows: p.points.filter((x) => x.label === last).map((x) => [x.block, x.E, x.alpha0.mean, x.alpha0.std, x.width.mean, x.width.std, x.samples]),
        },
      ],
    },
  };
}
