import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../../proto/errors.js';
import { emergenceCurve, parseFilter } from '../../analysis/emergence.js';
import { analyzeModel, type AnalyzeReport } from '../../analysis/model-analysis.js';
import { writeEmergenceReport } from '../../report/write-reports.js';
import { json, threadsFrom, withBackend, type CliContext } from '../context.js';
import { table } from '../format.js';
import { addModelFlags, analyzeOptions } from './analyze.js';
import type { CommandSpec } from './common.js';

const num = (v: number | null) => (v === null ? '-' : v.toFixed(6));

export const emergenceCommand = {
  name: 'emergence',
  summary: 'the emergence metric E across checkpoints; the first is the initial model',
  configure(cmd: Command) {
    cmd.argument('<models...>', 'checkpoints in training order; MODEL_0 is the initial checkpoint');
    cmd.option('--labels <list>', 'comma-separated label per checkpoint (default: directory names)');
    cmd.option('--filter <mode>', 'sample filter: 0 none, 1 drop f > 0, 2 drop alpha rising > 0.01, 3 both', '0');
    addModelFlags(cmd);
    cmd.option('--out <dir>', 'write report.json, emergence.csv and emergence.svg here');
  },
  async run(ctx: CliContext, args: string[], o: Record<string, string | boolean | undefined>) {
    const paths = args;
    if (paths.length < 2) throw new UsageError('emergence needs at least two checkpoints: the initial one and a later one');
    const labels = o.labels === undefined ? paths.map((p) => basename(resolve(p))) : (o.labels as string).split(',').map((s) => s.trim());
    if (labels.length !== paths.length) throw new UsageError(`--labels names ${labels.length} checkpoints but ${paths.length} were given`);
    const filter = parseFilter(o.filter as string);
    const threads = threadsFrom(o.threads as string | undefined);
    const opts = analyzeOptions(o, threads);
    const reports: AnalyzeReport[] = [];
    await withBackend(ctx, threads, 'emergence', async (backend, listener) => {
      for (const p of paths) reports.push(await analyzeModel(p, opts, backend, listener));
    });
    const checkpoints = emergenceCurve(
      reports.map((r, i) => ({ label: labels[i], model: paths[i], samples: r.samples })),
      filter,
    );
    const result = {
      layout: reports[0].layout,
      mode: reports[0].mode,
      layerSample: reports[0].layerSample,
      filter,
      params: opts.params,
      checkpoints,
      perCheckpoint: reports.map((r, i) => ({ label: labels[i], samples: r.samples.map(({ sample, alpha0, width, tau }) => ({ sample, alpha0, width, tau })), stats: r.stats })),
    };
    const files = o.out ? await writeEmergenceReport(o.out as string, result) : [];
    if (o.json) {
      ctx.out(json(result));
      return;
    }
    ctx.out(
      table(
        ['checkpoint', 'alpha0', 'width', 'E', 'samples'],
        checkpoints.map((c) => [c.label, num(c.alpha0.mean), num(c.width.mean), num(c.E), String(c.alpha0.samples.length)]),
      ) + (files.length ? `report: ${files.join(', ')}\n` : ''),
    );
  },
} satisfies CommandSpec;
