import { UsageError } from '../../../proto/errors.js';
import { comparisonStep, differences, eAtStep, readRuns } from '../../analysis/compare.js';
import { writeCompareReport, type Comparison } from '../../report/compare-report.js';
import { runInfo } from '../../report/figure-meta.js';
import { json, type CliContext } from '../context.js';
import { parseInteger } from '../flags.js';
import { table } from '../format.js';
import type { CommandOptions } from './common.js';

const num = (v: number | null) => (v === null ? '-' : v.toFixed(6));

export async function run(ctx: CliContext, dirs: string[], o: CommandOptions): Promise<void> {
  if (dirs.length < 2) throw new UsageError('compare needs at least two runs');
  const asked = o.step === undefined ? undefined : parseInteger('--step', o.step as string, 0);
  const runs = await readRuns(dirs, o.names === undefined ? undefined : (o.names as string).split(',').map((s) => s.trim()));
  const step = comparisonStep(runs, asked);
  const c: Comparison = { runs, step, ...eAtStep(runs, step), notes: differences(runs) };
  for (const n of c.notes) ctx.err(`note: ${n}\n`);
  const info = runInfo();
  const files = o.out ? await writeCompareReport(o.out as string, c, info) : [];
  if (o.json) {
    ctx.out(json({ ...info, step, atStep: c.atStep, missing: c.missing, notes: c.notes, runs: runs.map((r) => ({ name: r.name, path: r.path, layout: r.layout, mode: r.mode, size: r.size, checkpoints: r.checkpoints })) }));
    return;
  }
  ctx.out(
    `E at step ${step}, by model size:\n` +
      table(['run', 'parameters', 'NIN weights', 'checkpoint', 'E', 'E std'], c.atStep.map((p) => [p.name, String(p.checkpointParameters), String(p.layoutParameters), p.label, num(p.E), num(p.EStd)])) +
      (c.missing.length ? `no E at step ${step}: ${c.missing.join(', ')}\n` : '') +
      (files.length ? `report: ${files.join(', ')}\n` : ''),
  );
}
