import { HEIGHT, topLevel, WIDTH } from '../figure-style.js';
import type { StepAxis } from '../step-axis.js';

/** One bar of the NFD histogram: nodes of one matrix kind with NFD in [binStart, binEnd). */
export interface NfdBinRow {
  binStart: number;
  binEnd: number;
  matrix: string;
  count: number;
}

/** Histogram of the defined (non-zero) NFDs of a checkpoint, stacked by the matrix the neurons feed. */
export function nfdHistogramSpec(title: string, subtitle: string[], rows: NfdBinRow[]): object {
  return {
    ...topLevel(title, subtitle),
    width: WIDTH,
    height: HEIGHT,
    data: { values: rows },
    mark: { type: 'bar', binSpacing: 0 },
    encoding: {
      x: { field: 'binStart', type: 'quantitative', bin: { binned: true }, title: 'node fractal dimension' },
      x2: { field: 'binEnd' },
      y: { field: 'count', type: 'quantitative', stack: 'zero', title: 'neurons' },
      color: { field: 'matrix', type: 'nominal', title: 'input of', scale: { scheme: 'tableau10' } },
      tooltip: [{ field: 'matrix', title: 'input of' }, { field: 'binStart', title: 'NFD from' }, { field: 'binEnd', title: 'NFD to' }, { field: 'count', title: 'neurons' }],
    },
  };
}

/** One slice of a checkpoint's violin: the share of its defined NFDs in the bin centred at `nfd`. */
export interface NfdDensityRow {
  label: string;
  step: number | null;
  order: number;
  nfd: number;
  density: number;
}

/**
 * The NFD distribution of each checkpoint as a violin, one column per checkpoint in training
 * order (each violin's width is the share of neurons in a bin), and the median across steps
 * on the step axis below it.
 */
export function nfdViolinSpec(title: string, subtitle: string[], rows: NfdDensityRow[], medians: Array<{ label: string; step: number | null; order: number; median: number | null }>, axis: StepAxis): object {
  const checkpoints = medians.length;
  const violinWidth = Math.max(14, Math.min(70, Math.floor((WIDTH + 200) / Math.max(1, checkpoints))));
  return {
    ...topLevel(title, subtitle),
    vconcat: [
      {
        data: { values: rows },
        facet: { column: { field: 'label', type: 'ordinal', sort: { field: 'order' }, title: 'checkpoint (training order)', header: { labelAngle: -60, labelAlign: 'right', labelOrient: 'bottom' } } },
        spacing: 0,
        spec: {
          width: violinWidth,
          height: HEIGHT,
          mark: { type: 'area', orient: 'horizontal', interpolate: 'monotone', opacity: 0.8 },
          encoding: {
            y: { field: 'nfd', type: 'quantitative', title: 'node fractal dimension' },
            x: { field: 'density', type: 'quantitative', stack: 'center', axis: null, title: null },
            color: { field: 'order', type: 'quantitative', scale: { scheme: 'viridis' }, legend: null },
            tooltip: [{ field: 'label', title: 'checkpoint' }, { field: 'step' }, { field: 'nfd', title: 'NFD (bin centre)' }, { field: 'density', title: 'share of neurons' }],
          },
        },
      },
      {
        width: WIDTH,
        height: HEIGHT - 120,
        data: { values: medians },
        mark: { type: 'line', point: { filled: true, size: 30 }, color: '#1f5fa8' },
        encoding: {
          x: axis.x,
          y: { field: 'median', type: 'quantitative', title: 'median NFD', scale: { zero: false } },
          tooltip: [{ field: 'label', title: 'checkpoint' }, { field: 'step' }, { field: 'median', title: 'median NFD' }],
        },
      },
    ],
  };
}
