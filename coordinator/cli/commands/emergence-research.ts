import { UsageError } from '../../../proto/errors.js';
import type { ShardBackend } from '../../../worker/backends/shard-backend.js';
import { readBenchmarks, type BenchmarkScore } from '../../analysis/benchmarks-read.js';
import { correlateBenchmarks, pickTasks, type BenchmarkCorrelation } from '../../analysis/benchmarks.js';
import type { EmergencePoint, FilterMode } from '../../analysis/emergence.js';
import type { AnalyzeOptions, SampleResult } from '../../analysis/model-analysis.js';
import { modelSize, type ModelSize } from '../../analysis/model-size.js';
import { nfdSeries, type NfdSeries } from '../../analysis/nfd-series.js';
import { blockEmergence, type PerLayerSeries } from '../../analysis/per-layer-series.js';
import { stepOf } from '../../analysis/series-order.js';
import type { RunListener } from '../../run/run-shards.js';
import { benchmarkOutputs, taskName } from '../../report/benchmarks-report.js';
import { runOf, type EmergenceResult } from '../../report/emergence-report.js';
import { figureSubtitle, seriesName } from '../../report/figure-meta.js';
import type { ReportSection } from '../../report/html-report.js';
import { nfdSeriesOutputs } from '../../report/nfd-series-report.js';
import { emergencePerLayerOutputs } from '../../report/per-layer-report.js';
import { table } from '../format.js';

/**
 * What `emergence` adds for research beyond the curve: benchmark correlation (--benchmarks),
 * per-layer E (--per-layer), the NFD distribution per checkpoint (--nfd), and the model's
 * size in every report.json (what `compare` plots E against). Their flags are declared in
 * emergence.ts.
 */

export interface ResearchPlan {
  benchmarks?: { path: string; scores: BenchmarkScore[]; tasks: string[] };
  perLayer: boolean;
  nfd: boolean;
}

/**
 * Flags checked and benchmark files read before any analysis: a bad file fails in a second, not
 * after an hour. --per-layer is a model flag (analyzeOptions); E per block is computed here.
 */
export async function researchPlan(o: Record<string, string | boolean | undefined>): Promise<ResearchPlan> {
  const path = o.benchmarks as string | undefined;
  if (!path && o.tasks !== undefined) throw new UsageError('--tasks picks benchmark tasks: give --benchmarks PATH too');
  let benchmarks: ResearchPlan['benchmarks'];
  if (path) {
    const scores = await readBenchmarks(path, o.metric as string);
    const wanted = o.tasks === undefined ? undefined : (o.tasks as string).split(',').map((t) => t.trim()).filter(Boolean);
    benchmarks = { path, scores, tasks: pickTasks(scores, wanted, path) };
  }
  return { benchmarks, perLayer: Boolean(o.perLayer), nfd: Boolean(o.nfd) };
}

/** --nfd: every included checkpoint's NFDs, on the run's backend (after the series, so E is never delayed by it). */
export async function seriesNfd(plan: ResearchPlan, members: ReadonlyArray<{ label: string; model: string }>, opts: AnalyzeOptions, backend: ShardBackend, listener?: RunListener): Promise<NfdSeries | undefined> {
  if (!plan.nfd) return undefined;
  return nfdSeries(members.map((m) => ({ label: m.label, step: stepOf(m.label) ?? null, model: m.model })), opts, backend, listener);
}

export interface ResearchFields {
  /** The size of the first checkpoint's model (compare plots E against it). */
  size: ModelSize;
  benchmarks?: BenchmarkCorrelation;
  perLayer?: PerLayerSeries;
  nfd?: NfdSeries;
}

export async function researchFields(
  plan: ResearchPlan,
  checkpoints: readonly EmergencePoint[],
  members: ReadonlyArray<{ model: string; samples: SampleResult[] }>,
  filter: FilterMode,
  layerSample: number,
  nfd: NfdSeries | undefined,
): Promise<ResearchFields> {
  const b = plan.benchmarks;
  return {
    size: await modelSize(members[0].model, layerSample),
    ...(b ? { benchmarks: correlateBenchmarks(checkpoints, b.scores, b.tasks, b.path) } : {}),
    ...(plan.perLayer ? { perLayer: blockEmergence(checkpoints.map((c, i) => ({ label: c.label, step: c.step, samples: members[i].samples })), filter) } : {}),
    ...(nfd ? { nfd } : {}),
  };
}

/** The files and report sections of the research additions, written into `dir`. */
export async function researchOutputs(dir: string, r: EmergenceResult & ResearchFields): Promise<{ files: string[]; sections: ReportSection[] }> {
  const cp = r.checkpoints;
  const series = seriesName(cp.map((c) => c.model));
  const subtitle = figureSubtitle(`${series} · layout ${r.layout} · ${cp.length} checkpoints (${cp[0].label} … ${cp[cp.length - 1].label})`, runOf(r));
  const files: string[] = [];
  const sections: ReportSection[] = [];
  for (const made of [
    r.benchmarks && (await benchmarkOutputs(dir, r.benchmarks, cp, series, subtitle)),
    r.perLayer && (await emergencePerLayerOutputs(dir, r.perLayer, series, subtitle)),
    r.nfd && (await nfdSeriesOutputs(dir, r.nfd, series, subtitle)),
  ]) {
    if (!made) continue;
    files.push(...made.files);
    sections.push(made.section);
  }
  return { files, sections };
}

const num = (v: number | null) => (v === null ? '-' : v.toFixed(4));

/** The terminal's summary of the additions. */
export function researchText(r: ResearchFields): string {
  let out = '';
  if (r.benchmarks) {
    out +=
      `E against ${r.benchmarks.metric} (${r.benchmarks.source}):\n` +
      table(
        ['task', 'n', 'pearson r', 'p', 'spearman rho', 'p'],
        r.benchmarks.correlations.map((c) => [taskName(c), String(c.n), num(c.pearson.value), c.pearson.p === null ? '-' : c.pearson.p.toExponential(2), num(c.spearman.value), c.spearman.p === null ? '-' : c.spearman.p.toExponential(2)]),
      );
    if (r.benchmarks.unmatched.length) out += `no score at the step of: ${r.benchmarks.unmatched.join(', ')}\n`;
  }
  if (r.perLayer) {
    const last = r.perLayer.points.filter((p) => p.label === r.perLayer!.points[r.perLayer!.points.length - 1].label);
    out += `E per block at ${last[0]?.label}: ${last.map((p) => `${p.block}: ${num(p.E)}`).join(', ')}\n`;
  }
  if (r.nfd) out += `median NFD per checkpoint: ${r.nfd.checkpoints.map((c) => `${c.label} ${num(c.summary.median)}`).join(', ')}\n`;
  return out;
}
