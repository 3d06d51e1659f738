import { keepSample, type FilterMode } from './emergence.js';
import type { SampleResult } from './model-analysis.js';

/**
 * E per block across a series: each block's alpha0 and width are averaged over the samples
 * the network's --filter keeps (and where that block has a spectrum), and
 * E_b(t) = (w_b(t)/w_b(t0)) · ln(alpha0_b(t0)/alpha0_b(t)), with t0 the first checkpoint.
 */

export interface BlockPoint {
  label: string;
  step: number | null;
  block: number;
  alpha0: { mean: number | null; std: number | null };
  width: { mean: number | null; std: number | null };
  /** null when no kept sample has this block's spectrum, here or at t0. */
  E: number | null;
  samples: number;
}

export interface PerLayerSeries {
  blocks: number;
  /** Population std (ddof 0) over samples. */
  points: BlockPoint[];
}

function meanStd(v: number[]): { mean: number | null; std: number | null } {
  if (v.length === 0) return { mean: null, std: null };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean, std: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length) };
}

export function blockEmergence(checkpoints: ReadonlyArray<{ label: string; step: number | null; samples: SampleResult[] }>, filter: FilterMode): PerLayerSeries {
  const blocks = checkpoints[0]?.samples[0]?.blocks?.length ?? 0;
  const points: BlockPoint[] = [];
  const first = new Map<number, BlockPoint>();
  for (const c of checkpoints) {
    const kept = c.samples.filter((s) => keepSample(s, filter));
    for (let b = 0; b < blocks; b++) {
      const spectra = kept.flatMap((s) => {
        const x = s.blocks?.[b];
        return x && !('error' in x) ? [x] : [];
      });
      const p: BlockPoint = { label: c.label, step: c.step, block: b, alpha0: meanStd(spectra.map((s) => s.alpha0)), width: meanStd(spectra.map((s) => s.width)), E: null, samples: spectra.length };
      if (!first.has(b)) first.set(b, p);
      const t0 = first.get(b)!;
      if (p.alpha0.mean !== null && t0.alpha0.mean !== null) p.E = (p.width.mean! / t0.width.mean!) * Math.log(t0.alpha0.mean / p.alpha0.mean);
      points.push(p);
    }
  }
  return { blocks, points };
}
