import type { EmergencePoint, SampleRecord } from '../analysis/emergence.js';
import type { ReportFigure } from './html-report.js';
import { HEIGHT, r6, topLevel, WIDTH } from './figure-style.js';
import { stepAxis, type StepAxis } from './step-axis.js';

export interface EmergenceFigureInput {
  /** The series as a reader names it (hub repository or local directory). */
  series: string;
  subtitle: string[];
  checkpoints: EmergencePoint[];
  /** Per checkpoint, aligned with `checkpoints`: every sample, kept by the filter or not. */
  samples: SampleRecord[][];
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const std = (v: number[]) => {
  const m = mean(v);
  return Math.sqrt(mean(v.map((x) => (x - m) ** 2)));
};

/** Which checkpoint a row belongs to: label, step (or order for categories). */
const at = (c: EmergencePoint, order: number) => ({ label: c.label, step: c.step, order });

/** Mean f(alpha) over the kept samples of each checkpoint, with f ± std at each q. */
function spectraRows(input: EmergenceFigureInput) {
  return input.checkpoints.flatMap((c, i) => {
    const kept = input.samples[i].filter((s) => s.kept);
    if (kept.length === 0) return [];
    return kept[0].qAlpha.map((q, k) => {
      const f = kept.map((s) => s.f[k]);
      const [fm, fs] = [mean(f), std(f)];
      return { ...at(c, i), k, q, alpha: r6(mean(kept.map((s) => s.alpha[k]))), f: r6(fm), fLow: r6(fm - fs), fHigh: r6(fm + fs) };
    });
  });
}

const MAX_HOVER_POINT_SERIES = 20;

function spectraFigure(input: EmergenceFigureInput, axis: StepAxis): ReportFigure {
  const color = axis.color;
  const spec = {
    ...topLevel(`f(alpha) across training — ${input.series}`, input.subtitle),
    width: WIDTH,
    height: HEIGHT + 60,
    data: { values: spectraRows(input) },
    encoding: { x: { field: 'alpha', type: 'quantitative', title: 'alpha', scale: { zero: false } } },
    layer: [
      {
        // Sorted by alpha, not by q: an order channel would split the band into one area per point.
        mark: { type: 'area', opacity: 0.15, aria: false },
        // No legend of its own: merged with the line's, Vega-Lite would draw symbols instead of the colour bar.
        encoding: { y: { field: 'fLow', type: 'quantitative', title: 'f(alpha)' }, y2: { field: 'fHigh' }, color: { ...color, legend: null }, detail: { field: 'label' } },
      },
      {
        mark: { type: 'line', strokeWidth: 1.5 },
        encoding: {
          y: { field: 'f', type: 'quantitative' },
          color,
          detail: { field: 'label' },
          order: { field: 'k' },
          tooltip: [{ field: 'label', title: 'checkpoint' }, { field: 'step' }],
        },
      },
      // Invisible points: hovering a curve gives the values there. Beyond 20 checkpoints they
      // would be thousands of paths in the SVG; the line's own tooltip names the checkpoint.
      ...(input.checkpoints.length <= MAX_HOVER_POINT_SERIES
        ? [
            {
              mark: { type: 'point', opacity: 0, size: 40, aria: false },
              encoding: {
                y: { field: 'f', type: 'quantitative' },
                tooltip: [{ field: 'label', title: 'checkpoint' }, { field: 'step' }, { field: 'q' }, { field: 'alpha' }, { field: 'f', title: 'mean f' }, { field: 'fLow', title: 'f - std' }, { field: 'fHigh', title: 'f + std' }],
              },
            },
          ]
        : []),
    ],
    resolve: { legend: { color: 'independent' } },
  };
  return { name: 'spectra', spec, caption: 'Mean f(alpha) of each checkpoint over its kept samples, coloured by training step, with a band of ± one std of f at each q. Training moves the peak (alpha0) and changes the width.' };
}

function pointRows(input: EmergenceFigureInput) {
  return input.checkpoints.map((c, i) => ({
    ...at(c, i),
    E: r6(c.E),
    EStd: r6(c.EStd),
    ELow: c.E === null || c.EStd === null ? null : r6(c.E - c.EStd),
    EHigh: c.E === null || c.EStd === null ? null : r6(c.E + c.EStd),
    alpha0: r6(c.alpha0.mean),
    alpha0Std: r6(c.alpha0.std),
    alpha0Low: c.alpha0.mean === null ? null : r6(c.alpha0.mean - c.alpha0.std!),
    alpha0High: c.alpha0.mean === null ? null : r6(c.alpha0.mean + c.alpha0.std!),
    width: r6(c.width.mean),
    widthStd: r6(c.width.std),
    widthLow: c.width.mean === null ? null : r6(c.width.mean - c.width.std!),
    widthHigh: c.width.mean === null ? null : r6(c.width.mean + c.width.std!),
    kept: c.alpha0.samples.length,
  }));
}

/** Beyond this many checkpoints (Pythia has 154) error bars merge into a wall: draw a band. */
const MAX_ERROR_BARS = 40;

/** A value against step: error bars (± std over samples), then a line with hoverable points. */
function withErrorBars(axis: StepAxis, key: string, title: string, count: number, extra: object[] = []) {
  const spread = count > MAX_ERROR_BARS ? { type: 'area', color: '#7aa6d8', opacity: 0.35 } : { type: 'rule', color: '#7aa6d8' };
  const tooltip = [{ field: 'label', title: 'checkpoint' }, { field: 'step' }, { field: key, title }, { field: `${key}Std`, title: 'std' }, { field: 'kept', title: 'samples kept' }];
  return {
    width: WIDTH,
    height: HEIGHT - 60,
    encoding: { x: axis.x },
    layer: [
      ...extra,
      { mark: spread, encoding: { y: { field: `${key}Low`, type: 'quantitative', title }, y2: { field: `${key}High` } } },
      { mark: { type: 'line', point: { filled: true, size: count > MAX_ERROR_BARS ? 12 : 30 }, color: '#1f5fa8' }, encoding: { y: { field: key, type: 'quantitative', title, scale: { zero: false } }, tooltip } },
    ],
  };
}

export function emergenceFigures(input: EmergenceFigureInput): ReportFigure[] {
  const cp = input.checkpoints;
  const axis = stepAxis(
    cp.map((c) => c.label),
    cp.map((c) => c.step),
  );
  const values = pointRows(input);
  const zero = { mark: { type: 'rule', strokeDash: [4, 4], color: '#999' }, encoding: { y: { datum: 0 } } };
  const E = {
    ...topLevel(`Emergence E across training — ${input.series}`, input.subtitle),
    data: { values },
    ...withErrorBars(axis, 'E', 'E', cp.length, [zero]),
    height: HEIGHT,
  };
  const alpha0Width = {
    ...topLevel(`alpha0 and width across training — ${input.series}`, input.subtitle),
    data: { values },
    vconcat: [withErrorBars(axis, 'alpha0', 'alpha0 (peak of f)', cp.length), withErrorBars(axis, 'width', 'width (alpha range)', cp.length)],
  };
  const scaleNote = axis.scale === 'symlog' ? ' The step axis is symlog (constant 1): logarithmic above 10, linear near 0, so step 0 sits at the origin.' : '';
  return [
    { name: 'emergence', spec: E, caption: `E(t) = (w(t)/w(t0)) · ln(alpha0(t0)/alpha0(t)) against training step; bars (a band beyond ${MAX_ERROR_BARS} checkpoints): ± std of E over the kept samples (each sample against the initial checkpoint's means).${scaleNote}` },
    spectraFigure(input, axis),
    { name: 'alpha0-width', spec: alpha0Width, caption: `Mean alpha0 (top) and width (bottom) over the kept samples; bars (a band beyond ${MAX_ERROR_BARS} checkpoints): ± population std over samples.${scaleNote}` },
  ];
}
