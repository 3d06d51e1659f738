import { basename, resolve } from 'node:path';
import { UsageError } from '../../../proto/errors.js';
import { emergenceCurve, parseFilter, sampleRecords } from '../../analysis/emergence.js';
import { checkLocalSeries } from '../../analysis/series-order.js';
import { runInfo } from '../../report/figure-meta.js';
import { expandRevisions, hubLabel, runSeries } from '../../analysis/emergence-series.js';
import { writeEmergenceReport } from '../../report/write-reports.js';
import { json, threadsFrom, withBackend, type CliContext } from '../context.js';
import { table } from '../format.js';
import { analyzeOptions, readOnWorkers } from './analyze-run.js';
import type { CommandOptions } from './common.js';
import { researchFields, researchOutputs, researchPlan, researchText, seriesNfd } from './emergence-research.js';
import type { NfdSeries } from '../../analysis/nfd-series.js';
import { isHubRef } from '../../../worker/io/hub/ref.js';
import { checkOutputDirectory } from '../../../worker/io/atomic-write.js';

const num = (v: number | null) => (v === null ? '-' : v.toFixed(6));

export async function run(ctx: CliContext, args: string[], o: CommandOptions): Promise<void> {
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
}
