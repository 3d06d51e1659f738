import { InputError, UsageError } from '../../proto/errors.js';
import { openModel } from './model-analysis.js';

/**
 * A local series is only as right as its order: a shell glob (`step*`) puts step512 before
 * step64, and E then looks as if emergence collapsed. Labels that carry step numbers are
 * therefore checked for training order, and a series mixing models is refused.
 */

/** The training step a label names: its last run of digits (`step1000` → 1000, `pythia-160m-step64` → 64). */
export function stepOf(label: string): number | undefined {
  const m = /(\d+)(?!.*\d)/.exec(label);
  return m ? Number(m[1]) : undefined;
}

/**
 * The members in training order. When every label carries a step, the steps must rise
 * strictly: otherwise an error naming the expected order, or with `sort` that order.
 * Labels without numbers are taken in the order given.
 */
export function orderSeries<T extends { label: string }>(members: T[], sort: boolean): T[] {
  const steps = members.map((m) => stepOf(m.label));
  if (steps.some((s) => s === undefined)) return members;
  const sorted = members.map((m, i) => ({ m, step: steps[i]! })).sort((a, b) => a.step - b.step);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].step === sorted[i - 1].step) {
      throw new UsageError(`${sorted[i - 1].m.label} and ${sorted[i].m.label} both name step ${sorted[i].step}: give each checkpoint its own --labels`);
    }
  }
  if (steps.every((s, i) => i === 0 || s! > steps[i - 1]!)) return members;
  const expected = sorted.map((x) => x.m.label);
  if (sort) return sorted.map((x) => x.m);
  throw new UsageError(
    `checkpoints are not in training order (by the step in their labels): got ${members.map((m) => m.label).join(', ')}; expected ${expected.join(', ')} (give them in that order, or add --sort)`,
  );
}

export interface MemberShape {
  label: string;
  architecture: string;
  hidden: number;
}

/** One architecture and hidden size in a series, unless `allowMixed`. */
export function checkSameShape(shapes: MemberShape[], allowMixed: boolean): void {
  if (allowMixed || shapes.length === 0) return;
  const [first] = shapes;
  const other = shapes.find((s) => s.architecture !== first.architecture || s.hidden !== first.hidden);
  if (!other) return;
  const what = (s: MemberShape) => `${s.label} is ${s.architecture} with hidden size ${s.hidden}`;
  throw new InputError(`the series mixes models: ${what(first)}, ${what(other)} (add --allow-mixed to compare them anyway)`);
}

/**
 * A local series, checked before any work: training order (`sort` sorts instead) and one
 * architecture and hidden size (`allowMixed` lifts it). Reading each config and safetensors
 * header costs milliseconds; hub series are ordered by `--revisions` and not opened here.
 */
export async function checkLocalSeries<T extends { label: string; model: string }>(
  members: T[],
  o: { sort: boolean; allowMixed: boolean; layerSample: number },
  isLocal: (model: string) => boolean,
): Promise<T[]> {
  if (!members.every((m) => isLocal(m.model))) return members;
  const ordered = orderSeries(members, o.sort);
  if (!o.allowMixed) {
    const shapes: MemberShape[] = [];
    for (const m of ordered) {
      const { ckpt, layout } = await openModel(m.model, o.layerSample);
      await ckpt.close();
      shapes.push({ label: m.label, architecture: layout.architecture, hidden: layout.hidden });
    }
    checkSameShape(shapes, false);
  }
  return ordered;
}
