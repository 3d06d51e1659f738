import type { SampleResult } from '../analysis/model-analysis.js';
import type { ReportFigure } from './html-report.js';
import { HEIGHT, r6, topLevel, WIDTH } from './figure-style.js';

export interface AnalyzeFigureInput {
  model: string;
  subtitle: string[];
  samples: SampleResult[];
}

const sampleName = (s: number | 'full') => (s === 'full' ? 'full NIN' : `sample ${s}`);
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const std = (v: number[]) => {
  const m = mean(v);
  return Math.sqrt(mean(v.map((x) => (x - m) ** 2)));
};

const sampleColor = (n: number) => ({ field: 'sample', type: 'nominal', title: 'sample', scale: { scheme: n > 10 ? 'tableau20' : 'category10' } });

/** f(alpha) per sample, the mean ± std spectrum, and alpha0 and the width marked on it. */
function spectrumFigure(input: AnalyzeFigureInput): ReportFigure {
  const S = input.samples;
  const perSample = S.flatMap((s) => s.qAlpha.map((q, k) => ({ sample: sampleName(s.sample), k, q, alpha: r6(s.alpha[k]), f: r6(s.f[k]) })));
  const meanCurve = S[0].qAlpha.map((q, k) => {
    const f = S.map((s) => s.f[k]);
    const [fm, fs] = [mean(f), std(f)];
    return { k, q, alpha: r6(mean(S.map((s) => s.alpha[k]))), f: r6(fm), fLow: r6(fm - fs), fHigh: r6(fm + fs) };
  });
  const alpha0 = mean(S.map((s) => s.alpha0));
  const width = mean(S.map((s) => s.width));
  // The width bar spans mean(min alpha) to mean(max alpha): its length is the mean width.
  const lo = mean(S.map((s) => Math.min(...s.alpha)));
  const fBottom = Math.min(...meanCurve.map((p) => p.fLow ?? 0));
  const marks = [{ alpha0Text: `alpha0 = ${alpha0.toFixed(4)}`, widthText: `width = ${width.toFixed(4)}`, alpha0: r6(alpha0), alpha0Std: r6(std(S.map((s) => s.alpha0))), width: r6(width), widthStd: r6(std(S.map((s) => s.width))), lo: r6(lo), hi: r6(lo + width), y: r6(fBottom) }];
  const spec = {
    ...topLevel(`f(alpha) — ${input.model}`, input.subtitle),
    width: WIDTH,
    height: HEIGHT + 60,
    datasets: { samples: perSample, mean: meanCurve, marks },
    layer: [
      {
        data: { name: 'samples' },
        mark: { type: 'line', strokeWidth: 1, opacity: 0.7 },
        encoding: {
          x: { field: 'alpha', type: 'quantitative', title: 'alpha', scale: { zero: false } },
          y: { field: 'f', type: 'quantitative', title: 'f(alpha)' },
          color: sampleColor(S.length),
          detail: { field: 'sample' },
          order: { field: 'k' },
        },
      },
      {
        data: { name: 'mean' },
        // Sorted by alpha: an order channel would split the band into one area per point.
        mark: { type: 'area', color: '#555', opacity: 0.2 },
        encoding: { x: { field: 'alpha', type: 'quantitative' }, y: { field: 'fLow', type: 'quantitative' }, y2: { field: 'fHigh' } },
      },
      {
        data: { name: 'mean' },
        mark: { type: 'line', color: 'black', strokeWidth: 2.5, point: { size: 14, color: 'black' } },
        encoding: {
          x: { field: 'alpha', type: 'quantitative' },
          y: { field: 'f', type: 'quantitative' },
          order: { field: 'k' },
          tooltip: [{ field: 'q' }, { field: 'alpha', title: 'mean alpha' }, { field: 'f', title: 'mean f' }, { field: 'fLow', title: 'f - std' }, { field: 'fHigh', title: 'f + std' }],
        },
      },
      {
        data: { name: 'marks' },
        layer: [
          { mark: { type: 'rule', color: '#c0392b', strokeDash: [5, 3], strokeWidth: 1.5 }, encoding: { x: { field: 'alpha0', type: 'quantitative' }, tooltip: [{ field: 'alpha0', title: 'mean alpha0' }, { field: 'alpha0Std', title: 'std' }] } },
          // Labels beside the width bar, below the curves, where they do not cross a line.
          {
            mark: { type: 'text', color: '#c0392b', align: 'left', dx: 5, dy: -22, baseline: 'bottom' },
            encoding: { x: { field: 'alpha0', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' }, text: { field: 'alpha0Text' } },
          },
          {
            mark: { type: 'rule', color: '#1e8449', strokeWidth: 3 },
            encoding: { x: { field: 'lo', type: 'quantitative' }, x2: { field: 'hi' }, y: { field: 'y', type: 'quantitative' }, tooltip: [{ field: 'width', title: 'mean width' }, { field: 'widthStd', title: 'std' }] },
          },
          { mark: { type: 'text', color: '#1e8449', align: 'left', baseline: 'top', dy: 6 }, encoding: { x: { field: 'lo', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' }, text: { field: 'widthText' } } },
        ],
      },
    ],
  };
  return {
    name: 'spectrum',
    spec,
    caption: `f(alpha) of each sample (thin), their mean with ± one std band (black); dashed: mean alpha0 = ${r6(alpha0)}; green bar: mean width = ${r6(width)}.`,
  };
}

function tauFigure(input: AnalyzeFigureInput): ReportFigure {
  const S = input.samples;
  const values = S.flatMap((s) => s.q.map((q, k) => ({ sample: sampleName(s.sample), q, tau: r6(s.tau[k]), r2: r6(s.fit.r2[k]) })));
  const spec = {
    ...topLevel(`tau(q) — ${input.model}`, input.subtitle),
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: 'line', strokeWidth: 1.2, point: { size: 10 } },
    encoding: {
      x: { field: 'q', type: 'quantitative', title: 'q' },
      y: { field: 'tau', type: 'quantitative', title: 'tau(q)' },
      color: sampleColor(S.length),
      tooltip: [{ field: 'sample' }, { field: 'q' }, { field: 'tau', title: 'tau(q)' }, { field: 'r2', title: 'R² of the fit' }],
    },
  };
  return { name: 'tau', spec, caption: 'Mass exponents tau(q) of each sample: the slopes of log partition sums against log radius.' };
}

export function analyzeFigures(input: AnalyzeFigureInput): ReportFigure[] {
  return [spectrumFigure(input), tauFigure(input)];
}
