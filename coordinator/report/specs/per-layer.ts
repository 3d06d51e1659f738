import { HEIGHT, topLevel, WIDTH } from '../figure-style.js';

/** One cell of the per-layer heatmaps: a block at a checkpoint. */
export interface BlockCell {
  label: string;
  step: number | null;
  order: number;
  block: number;
  E: number | null;
  alpha0: number | null;
  width: number | null;
  samples: number;
}

const cellTooltip = [{ field: 'label', title: 'checkpoint' }, { field: 'step' }, { field: 'block' }, { field: 'E' }, { field: 'alpha0', title: 'mean alpha0' }, { field: 'width', title: 'mean width' }, { field: 'samples', title: 'samples' }];

function heatmap(rows: BlockCell[], field: 'E' | 'alpha0', color: object, checkpoints: number, blocks: number) {
  return {
    width: Math.max(WIDTH, Math.min(1400, checkpoints * 10)),
    height: Math.max(120, Math.min(HEIGHT + 100, blocks * 18)),
    data: { values: rows },
    mark: { type: 'rect' },
    encoding: {
      x: { field: 'label', type: 'ordinal', sort: { field: 'order' }, title: 'checkpoint (training order)', axis: { labelAngle: -45, labelOverlap: 'greedy', grid: false } },
      y: { field: 'block', type: 'ordinal', title: 'block', sort: 'descending', axis: { grid: false } },
      color: { field, type: 'quantitative', title: field === 'E' ? 'E of the block' : 'mean alpha0', ...color },
      tooltip: cellTooltip,
    },
  };
}

/** E and alpha0 of every block (rows, last block on top) at every checkpoint (columns, in training order). */
export function blockHeatmapSpec(title: string, subtitle: string[], rows: BlockCell[]): object {
  const checkpoints = new Set(rows.map((r) => r.order)).size;
  const blocks = new Set(rows.map((r) => r.block)).size;
  return {
    ...topLevel(title, subtitle),
    vconcat: [
      heatmap(rows, 'E', { scale: { scheme: 'blueorange', domainMid: 0 } }, checkpoints, blocks),
      heatmap(rows, 'alpha0', { scale: { scheme: 'viridis', zero: false } }, checkpoints, blocks),
    ],
    resolve: { scale: { color: 'independent' } },
  };
}

/** One block of one sample of a checkpoint. */
export interface BlockSampleRow {
  sample: string;
  block: number;
  alpha0: number | null;
  width: number | null;
}

export interface BlockMeanRow {
  block: number;
  alpha0: number | null;
  alpha0Low: number | null;
  alpha0High: number | null;
  width: number | null;
  widthLow: number | null;
  widthHigh: number | null;
}

function profile(key: 'alpha0' | 'width', title: string, blocks: number) {
  // Half a block of margin each side, so the first and last blocks' points are not cut.
  const x = { field: 'block', type: 'quantitative', title: 'block', scale: { domain: [-0.5, blocks - 0.5], nice: false }, axis: { tickMinStep: 1, format: 'd', grid: false } };
  return {
    width: WIDTH,
    height: HEIGHT - 80,
    layer: [
      { data: { name: 'samples' }, mark: { type: 'point', color: '#999', size: 18 }, encoding: { x, y: { field: key, type: 'quantitative', title, scale: { zero: false } }, tooltip: [{ field: 'sample' }, { field: 'block' }, { field: key }] } },
      { data: { name: 'means' }, mark: { type: 'rule', color: '#7aa6d8' }, encoding: { x, y: { field: `${key}Low`, type: 'quantitative' }, y2: { field: `${key}High` } } },
      { data: { name: 'means' }, mark: { type: 'line', point: { filled: true, size: 30 }, color: '#1f5fa8' }, encoding: { x, y: { field: key, type: 'quantitative' }, tooltip: [{ field: 'block' }, { field: key, title: `mean ${key}` }] } },
    ],
  };
}

/** alpha0 and width of each block: every sample (grey) and the mean ± std over samples. */
export function blockProfileSpec(title: string, subtitle: string[], samples: BlockSampleRow[], means: BlockMeanRow[]): object {
  return { ...topLevel(title, subtitle), datasets: { samples, means }, vconcat: [profile('alpha0', 'alpha0 (peak of f)', means.length), profile('width', 'width (alpha range)', means.length)] };
}

/** tau(q) of each block, averaged over samples, one line per block. */
export function blockTauSpec(title: string, subtitle: string[], rows: Array<{ block: number; q: number; tau: number | null }>): object {
  return {
    ...topLevel(title, subtitle),
    width: WIDTH,
    height: HEIGHT,
    data: { values: rows },
    mark: { type: 'line', strokeWidth: 1.5 },
    encoding: {
      x: { field: 'q', type: 'quantitative', title: 'q' },
      y: { field: 'tau', type: 'quantitative', title: 'tau(q), mean over samples' },
      color: { field: 'block', type: 'quantitative', scale: { scheme: 'viridis' }, title: 'block', legend: { format: 'd' } },
      detail: { field: 'block' },
      tooltip: [{ field: 'block' }, { field: 'q' }, { field: 'tau' }],
    },
  };
}
