import type { Command } from 'commander';
import { UsageError } from '../../../proto/errors.js';
import { comparisonStep, differences, eAtStep, readRuns } from '../../analysis/compare.js';
import { writeCompareReport, type Comparison } from '../../report/compare-report.js';
import { runInfo } from '../../report/figure-meta.js';
import { json, type CliContext } from '../context.js';
import { parseInteger } from '../flags.js';
import { table } from '../format.js';
import type { CommandSpec } from './common.js';

const num = (v: number | null) => (v === null ? '-' : v.toFixed(6));

export const compareCommand = {
  name: 'compare',
  summary: 'several emergence runs side by side: E against step, and E at one step against model size',
  configure(cmd: Command) {
    cmd.argument('<runs...>', 'emergence --out directories (or their report.json files)');
    cmd.option('--step <n>', 'the training step E is compared at across sizes (default: the largest step every run has)');
    cmd.option('--names <list>', 'comma-separated name per run (default: the hub repository, else the directory name)');
    cmd.option('--out <dir>', 'write compare.csv, compare-size.csv, the compare-emergence and compare-size figures and report.html here');
    cmd.option('--json', 'print only JSON on stdout');
  },
  async run(ctx: CliContext, dirs: string[], o: Record<string, string | boolean | undefined>) {
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
  },
} satisfies CommandSpec;
