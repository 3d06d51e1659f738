import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../../proto/errors.js';
import { emergenceCurve, parseFilter, sampleRecords } from '../../analysis/emergence.js';
import { checkLocalSeries } from '../../analysis/series-order.js';
import { runInfo } from '../../report/figure-meta.js';
import { expandRevisions, hubLabel, runSeries } from '../../analysis/emergence-series.js';
import { writeEmergenceReport } from '../../report/write-reports.js';
import { json, threadsFrom, withBackend, type CliContext } from '../context.js';
import { table } from '../format.js';
import { readOnWorkers, addBackendFlag, addModelFlags, analyzeOptions } from './analyze.js';
import { addClusterFlags } from '../remote-backend.js';
import type { CommandSpec } from './common.js';
import { addResearchFlags, researchFields, researchOutputs, researchPlan, researchText, seriesNfd } from './emergence-research.js';
import type { NfdSeries } from '../../analysis/nfd-series.js';
import { isHubRef } from '../../../worker/io/hub/ref.js';
import { checkOutputDirectory } from '../../../worker/io/atomic-write.js';

const num = (v: number | null) => (v === null ? '-' : v.toFixed(6));

export const emergenceCommand = {
  name: 'emergence',
  summary: 'the emergence metric E across checkpoints; the first is the initial model',
  configure(cmd: Command) {
    cmd.argument('<models...>', 'checkpoints in training order (directories, files or hf://OWNER/NAME@REV); MODEL_0 is the initial checkpoint');
    cmd.option(
      '--revisions <list>',
      'with one hf://OWNER/NAME: its revisions in training order, a comma list (step0,step1000,main) or "all" for every step<N> branch in numeric order ("all,main" adds main)',
    );
    cmd.option(
      '--keep-duplicates',
      'keep checkpoints whose weight files (any file, one shard is enough) or sampled weight bytes equal an earlier one in E; by default they are reported and left out',
    );
    cmd.option('--labels <list>', 'comma-separated label per checkpoint (default: directory names; hub revisions: the revision)');
    cmd.option('--filter <mode>', 'sample filter: 0 none, 1 drop f > 0, 2 drop alpha rising > 0.01, 3 both', '0');
    cmd.option('--sort', 'local checkpoints whose labels carry step numbers (step1000) are taken in step order; without it, another order is an error');
    cmd.option('--allow-mixed', 'allow local checkpoints of different architectures or hidden sizes in one series (by default an error)');
    addModelFlags(cmd);
    addResearchFlags(cmd);
    addBackendFlag(cmd, true);
    addClusterFlags(cmd);
    cmd.option('--out <dir>', 'write report.json, emergence.csv, samples.csv, the figures (emergence, spectra, alpha0-width as .svg, .png and Vega-Lite .vl.json) and report.html here');
  },
  async run(ctx: CliContext, args: string[], o: Record<string, string | boolean | undefined>) {
    if (o.out) await checkOutputDirectory(o.out as string);
    let paths = args;
    if (o.revisions !== undefined) {
      if (paths.length !== 1 || !isHubRef(paths[0])) throw new UsageError('--revisions takes exactly one model, the repository hf://OWNER/NAME');
      paths = (await expandRevisions(paths[0], o.revisions as string)).map((r) => `${paths[0]}@${r}`);
    }
    if (paths.length < 2) throw new UsageError('emergence needs at least two checkpoints: the initial one and a later one');
    const labels =
      o.labels === undefined
        ? await Promise.all(paths.map(async (p) => (await hubLabel(p)) ?? basename(resolve(p))))
        : (o.labels as string).split(',').map((s) => s.trim());
    if (labels.length !== paths.length) throw new UsageError(`--labels names ${labels.length} checkpoints but ${paths.length} were given`);
    const filter = parseFilter(o.filter as string);
    const threads = threadsFrom(o.threads as string | undefined);
    const opts = analyzeOptions(o, threads);
    const research = await researchPlan(o);
    const members = await checkLocalSeries(
      paths.map((model, i) => ({ label: labels[i], model })),
      { sort: Boolean(o.sort), allowMixed: Boolean(o.allowMixed), layerSample: opts.layerSample },
      (model) => !isHubRef(model),
    );
    let nfd: NfdSeries | undefined;
    const series = await withBackend(
      ctx,
      threads,
      'emergence',
      async (backend, listener) => {
        const s = await runSeries(members, readOnWorkers(o, opts, backend), backend, listener, { keepDuplicates: Boolean(o.keepDuplicates) });
        nfd = await seriesNfd(research, s.members, opts, backend, listener);
        return s;
      },
      o,
    );
    // Before the curve, so a duplicated or missing step is seen even when stdout is piped away.
    for (const w of series.warnings) ctx.err(`${w}\n`);
    const included = series.members;
    const checkpoints = emergenceCurve(included, filter);
    const result = {
      ...runInfo(),
      layout: included[0].layout,
      mode: opts.samples === 'full' ? ('full' as const) : ('sampled' as const),
      layerSample: opts.samples === 'full' ? null : opts.layerSample,
      filter,
      params: opts.params,
      checkpoints,
      perCheckpoint: included.map((m, i) => ({
        label: m.label,
        step: checkpoints[i].step,
        ...(m.commit ? { commit: m.commit, sha256: m.sha256 } : {}),
        samples: sampleRecords(m.samples, filter),
        stats: m.stats,
        cachedSamples: m.cachedSamples,
      })),
      integrity: series.integrity,
      ...(await researchFields(research, checkpoints, included, filter, opts.layerSample, nfd)),
    };
    const extra = o.out ? await researchOutputs(o.out as string, result) : { files: [], sections: [] };
    const files = o.out ? [...(await writeEmergenceReport(o.out as string, result, extra.sections)), ...extra.files] : [];
    if (o.json) {
      ctx.out(json(result));
      return;
    }
    const hasCommit = checkpoints.some((c) => c.commit);
    ctx.out(
      table(
        ['checkpoint', 'alpha0', 'width', 'E', 'samples', ...(hasCommit ? ['commit'] : [])],
        checkpoints.map((c) => [c.label, num(c.alpha0.mean), num(c.width.mean), num(c.E), String(c.alpha0.samples.length), ...(hasCommit ? [c.commit?.slice(0, 12) ?? '-'] : [])]),
      ) +
        researchText(result) +
        (files.length ? `report: ${files.join(', ')}\n` : ''),
    );
  },
} satisfies CommandSpec;
