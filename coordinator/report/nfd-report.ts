import { join } from 'node:path';
import { writeFileAtomic } from '../../worker/io/atomic-write.js';
import { VERSION } from '../../worker/version.js';
import type { ModelNfdReport } from '../analysis/model-nfd.js';
import { binIndex, definedValues, summarizeNfd, type NfdSummary } from '../analysis/nfd-summary.js';
import { toCsv } from './csv.js';
import { modelName, type RunInfo } from './figure-meta.js';
import { r6 } from './figure-style.js';
import { writeFigure } from './figure.js';
import { writeHtmlReport, escapeHtml, type ReportSection } from './html-report.js';
import { ensureOutDir } from './out-dir.js';
import { nfdHistogramSpec, type NfdBinRow } from './specs/nfd.js';

/** Bins of the NFD histograms and violins. */
export const NFD_BINS = 40;
/** Neurons listed as the top of a checkpoint. */
export const TOP_NEURONS = 20;

export interface NamedNfd {
  sample: number | 'full';
  node: number;
  block: number;
  matrix: string;
  neuron: number;
  nfd: number;
}

export function nfdSummary(r: ModelNfdReport): NfdSummary {
  return summarizeNfd(definedValues(r.tables), r.tables.reduce((a, t) => a + t.nfd.length, 0));
}

const named = (r: ModelNfdReport, t: ModelNfdReport['tables'][number], i: number): NamedNfd => {
  const s = r.stages[t.stage[i]];
  return { sample: t.sample, node: t.node[i], block: s.block, matrix: s.name, neuron: t.node[i] - s.start, nfd: t.nfd[i] };
};

/** The `k` neurons of largest NFD over all tables (ties: lower sample, then lower node id first). */
export function topNeurons(r: ModelNfdReport, k = TOP_NEURONS): NamedNfd[] {
  const all: Array<[number, number]> = [];
  r.tables.forEach((t, ti) => t.nfd.forEach((_, i) => all.push([ti, i])));
  all.sort(([ta, ia], [tb, ib]) => r.tables[tb].nfd[ib] - r.tables[ta].nfd[ia] || ta - tb || ia - ib);
  return all.slice(0, k).map(([ti, i]) => named(r, r.tables[ti], i));
}

function histogramRows(r: ModelNfdReport, lo: number, hi: number): NfdBinRow[] {
  const kinds = [...new Set(r.stages.map((s) => s.name))];
  const counts = new Map(kinds.map((k) => [k, new Uint32Array(NFD_BINS)]));
  for (const t of r.tables) t.nfd.forEach((v, i) => v !== 0 && counts.get(r.stages[t.stage[i]].name)![binIndex(v, lo, hi, NFD_BINS)]++);
  const width = (hi - lo) / NFD_BINS || 1;
  return kinds.flatMap((matrix) => Array.from(counts.get(matrix)!, (count, b) => ({ binStart: r6(lo + b * width)!, binEnd: r6(lo + (b + 1) * width)!, matrix, count })).filter((row) => row.count > 0));
}

/** nfd.csv: one row per node of every sample: sample, node, block, matrix, neuron, nfd. */
export function nfdCsv(r: ModelNfdReport): string {
  const rows = r.tables.flatMap((t) => Array.from(t.node, (_, i) => {
    const n = named(r, t, i);
    return [n.sample, n.node, n.block, n.matrix, n.neuron, n.nfd];
  }));
  return toCsv(['sample', 'node', 'block', 'matrix', 'neuron', 'nfd'], rows);
}

/** What `nfd MODEL --json` prints and report.json holds: per sample, the nodes as columns. */
export function nfdJson(r: ModelNfdReport, info?: RunInfo) {
  return {
    ...(info ?? {}),
    model: r.model,
    layout: r.layout,
    architecture: r.architecture,
    mode: r.mode,
    layerSample: r.layerSample,
    params: r.params,
    summary: nfdSummary(r),
    top: topNeurons(r),
    samples: r.tables.map((t) => {
      const names = Array.from(t.node, (_, i) => named(r, t, i));
      return { sample: t.sample, node: Array.from(t.node), block: names.map((n) => n.block), matrix: names.map((n) => n.matrix), neuron: names.map((n) => n.neuron), nfd: Array.from(t.nfd) };
    }),
    stats: r.stats,
    notes: r.notes,
  };
}

export function nfdSubtitle(r: ModelNfdReport): string[] {
  const what = r.mode === 'full' ? 'full NIN' : `samples ${r.tables.map((t) => t.sample).join(',')}, layer sample ${r.layerSample}`;
  return [`${modelName(r.model)} · ${r.architecture}, layout ${r.layout}`, `${what} · NFD threshold ${r.params.threshold}, decimals ${r.params.decimals} · neuromfa ${VERSION}`];
}

/** The histogram figure (nfd-histogram.*) and its report section. */
export async function nfdHistogramOutputs(dir: string, r: ModelNfdReport): Promise<{ files: string[]; section: ReportSection }> {
  const s = nfdSummary(r);
  const rows = s.min === null ? [] : histogramRows(r, s.min, s.max!);
  const spec = nfdHistogramSpec(`Node fractal dimensions — ${modelName(r.model)}`, nfdSubtitle(r), rows);
  const files = await writeFigure(dir, 'nfd-histogram', spec);
  const top = topNeurons(r);
  return {
    files,
    section: {
      heading: 'Node fractal dimension',
      figures: [{ name: 'nfd-histogram', spec, caption: `NFD of every ${r.mode === 'full' ? 'neuron' : 'sampled neuron'} with a defined value, stacked by the matrix it is an input of. ${s.zeros} of ${s.nodes} nodes have NFD 0 (fewer than 11 distances within the threshold, or a single distinct distance) and are not drawn.` }],
      tables: [
        { caption: 'Summary of the defined NFDs (std: population)', columns: ['nodes', 'zeros', 'mean', 'std', 'min', 'q25', 'median', 'q75', 'max'], rows: [[s.nodes, s.zeros, s.mean, s.std, s.min, s.q25, s.median, s.q75, s.max]] },
        { caption: `Top ${top.length} neurons by NFD`, csv: 'nfd.csv', columns: ['sample', 'node', 'block', 'matrix', 'neuron', 'NFD'], rows: top.map((n) => [String(n.sample), n.node, n.block, n.matrix, n.neuron, n.nfd]) },
      ],
      html: r.notes.map((n) => `<p>note: ${escapeHtml(n)}</p>`).join(''),
    },
  };
}

/** `nfd MODEL --out DIR`: report.json, nfd.csv, the histogram figure and report.html. */
export async function writeNfdReport(dir: string, r: ModelNfdReport, info: RunInfo): Promise<string[]> {
  await ensureOutDir(dir);
  const files = [join(dir, 'report.json'), join(dir, 'nfd.csv')];
  await writeFileAtomic(files[0], JSON.stringify(nfdJson(r, info), null, 2) + '\n');
  await writeFileAtomic(files[1], nfdCsv(r));
  const { files: figures, section } = await nfdHistogramOutputs(dir, r);
  files.push(...figures);
  const meta = { model: r.model, architecture: r.architecture, layout: r.layout, mode: r.mode, parameters: nfdSubtitle(r)[1], command: info.command, version: `neuromfa ${info.version}`, created: info.createdAt };
  files.push(await writeHtmlReport(dir, { title: `neuromfa nfd — ${modelName(r.model)}`, meta, sections: [section] }));
  return files;
}
