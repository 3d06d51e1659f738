/**
 * The training-step axis of the emergence figures. Pythia's steps are 0, 1, 2, 4, …, 512,
 * 1000, …, 143000: on a category axis they look evenly spaced and their labels overlap. The
 * step is numeric (from the labels), and when the steps span a decade or more the axis is
 * symlog with constant 1 (log10-like above 10, linear near 0), so step 0 sits at the origin
 * instead of at minus infinity. Ticks are 0 and powers of ten (with 2 and 5 between when
 * there are at most three decades), so 154 checkpoints still give about 7 labels.
 * Labels without numbers fall back to categories in the order given.
 */

export type StepScale = 'symlog' | 'linear' | 'category';

/**
 * Tick labels 0, 5, 100, 2k, 10k, 100k. Vega's own `~s` format picks its precision from the
 * whole domain and prints 1, 10 and 100 of a 0–143000 axis as `0k`.
 */
const STEP_LABEL = "datum.value >= 1000 ? format(datum.value / 1000, '~g') + 'k' : format(datum.value, '~g')";

export interface StepAxis {
  scale: StepScale;
  /** Vega-Lite x encoding (field `step`, or `label` for categories). */
  x: Record<string, unknown>;
  /** Vega-Lite color encoding on the same axis, with a colour bar. */
  color: Record<string, unknown>;
}

/** 0, then 1, 2, 5, 10, … (or 1, 10, 100, … beyond three decades) up to `max`. */
export function symlogTicks(max: number): number[] {
  const mult = Math.log10(max) <= 3 ? [1, 2, 5] : [1];
  const out = [0];
  for (let p = 1; p <= max; p *= 10) for (const m of mult) if (m * p <= max) out.push(m * p);
  return out;
}

export function stepAxis(labels: readonly string[], steps: ReadonlyArray<number | null>, title = 'training step'): StepAxis {
  if (steps.some((s) => s === null)) {
    return {
      scale: 'category',
      x: { field: 'label', type: 'ordinal', sort: [...labels], title: `checkpoint (${title} unknown: labels carry no numbers)`, axis: { labelAngle: -45, labelOverlap: 'greedy' } },
      color: { field: 'order', type: 'quantitative', scale: { scheme: 'viridis' }, title: 'checkpoint #', legend: { type: 'gradient', format: 'd' } },
    };
  }
  const s = steps as number[];
  const [min, max] = [Math.min(...s), Math.max(...s)];
  const positive = s.filter((v) => v > 0);
  const spansDecades = positive.length > 0 && max / Math.min(...positive) >= 10;
  if (spansDecades) {
    const ticks = symlogTicks(max);
    const scale = { type: 'symlog', constant: 1, domain: [min, max], nice: false };
    // Pixels kept free at both ends: the first and last points (and their error bars) stay off the frame.
    const x = { field: 'step', type: 'quantitative', scale: { ...scale, padding: 12 }, title: `${title} (symlog scale)`, axis: { values: ticks.filter((v) => v >= min), labelExpr: STEP_LABEL, labelOverlap: true } };
    return {
      scale: 'symlog',
      x,
      color: { field: 'step', type: 'quantitative', scale: { ...scale, scheme: 'viridis' }, title, legend: { type: 'gradient', values: ticks.filter((v) => v >= min), labelExpr: STEP_LABEL } },
    };
  }
  return {
    scale: 'linear',
    // Steps are whole numbers: no ticks between them, and no padding ticks beyond the data.
    x: { field: 'step', type: 'quantitative', scale: { domain: [min, max], nice: false, padding: 12 }, title, axis: { tickCount: 8, tickMinStep: 1, labelExpr: STEP_LABEL, labelOverlap: true } },
    color: { field: 'step', type: 'quantitative', scale: { scheme: 'viridis' }, title, legend: { type: 'gradient', labelExpr: STEP_LABEL } },
  };
}
