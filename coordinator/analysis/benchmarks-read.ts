import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InputError } from '../../proto/errors.js';

/**
 * Benchmark scores where researchers already have them: lm-evaluation-harness result files
 * (0.3, as Pythia publishes them: `results[task].acc`, the revision in `config.model_args`;
 * 0.4+: `results[task]["acc,none"]`, in `results_<date>.json`), or a tidy CSV
 * `step,task,metric,value` (an optional `shots` column). A directory is read recursively.
 */

export interface BenchmarkScore {
  step: number;
  task: string;
  metric: string;
  value: number;
  /** Few-shot examples, when the file says (config.num_fewshot, n-shot); null otherwise. */
  shots: number | null;
  /** The file it came from. */
  source: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The training step a harness file evaluated: `revision=step<N>` in model_args, else `step<N>` in its path. */
function stepOf(file: string, modelArgs: unknown): number {
  const args = isObject(modelArgs) ? Object.entries(modelArgs).map(([k, v]) => `${k}=${String(v)}`).join(',') : typeof modelArgs === 'string' ? modelArgs : '';
  const revision = /(?:^|,)\s*revision=([^,]+)/.exec(args)?.[1].trim();
  const fromRevision = revision ? /^step(\d+)$/.exec(revision)?.[1] : undefined;
  const fromPath = /step(\d+)/.exec(file)?.[1];
  const step = fromRevision ?? fromPath;
  if (step === undefined) {
    throw new InputError(`${file}: no training step: config.model_args names no revision=step<N>${revision ? ` (it names revision=${revision})` : ''} and the file name has no step<N>`);
  }
  return Number(step);
}

/** 0.4+ writes "acc,none" (metric,filter); prefer the unfiltered value, else the first filter. */
function metricValue(entry: Record<string, unknown>, metric: string): unknown {
  if (metric in entry) return entry[metric];
  if (`${metric},none` in entry) return entry[`${metric},none`];
  const key = Object.keys(entry).find((k) => k.startsWith(`${metric},`));
  return key === undefined ? undefined : entry[key];
}

const shotCount = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null);

export function parseHarnessJson(file: string, text: string, metric: string): BenchmarkScore[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (!isObject(json) || !isObject(json.results)) throw new InputError(`${file}: no "results" object (not an lm-evaluation-harness result file)`);
  const config = isObject(json.config) ? json.config : {};
  const step = stepOf(file, config.model_args);
  const nShot = isObject(json['n-shot']) ? json['n-shot'] : {};
  const configs = isObject(json.configs) ? json.configs : {};
  const scores: BenchmarkScore[] = [];
  for (const [task, entry] of Object.entries(json.results)) {
    if (!isObject(entry)) continue;
    const value = metricValue(entry, metric);
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new InputError(`${file}: results.${task}.${metric} is ${JSON.stringify(value)}, not a number`);
    const taskConfig = isObject(configs[task]) ? configs[task] : {};
    const shots = shotCount(nShot[task]) ?? shotCount(taskConfig.num_fewshot) ?? shotCount(config.num_fewshot);
    scores.push({ step, task, metric, value, shots, source: file });
  }
  return scores;
}

/** A CSV with a header naming step, task, metric and value (shots optional), in any order. */
export function parseScoresCsv(file: string, text: string, metric: string): BenchmarkScore[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = (lines[0] ?? '').split(',').map((h) => h.trim().toLowerCase());
  const col = (name: string) => header.indexOf(name);
  for (const need of ['step', 'task', 'metric', 'value']) {
    if (col(need) < 0) throw new InputError(`${file}: the header must name step, task, metric and value; it has no "${need}" column`);
  }
  const scores: BenchmarkScore[] = [];
  lines.slice(1).forEach((line, i) => {
    const cells = line.split(',').map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
    const at = (name: string) => cells[col(name)] ?? '';
    if (at('metric') !== metric) return;
    const step = Number(at('step'));
    const value = Number(at('value'));
    const where = `${file} line ${i + 2}`;
    if (!Number.isInteger(step) || step < 0 || at('step') === '') throw new InputError(`${where}: step "${at('step')}" is not a non-negative integer`);
    if (!Number.isFinite(value) || at('value') === '') throw new InputError(`${where}: value "${at('value')}" is not a number`);
    const shots = col('shots') >= 0 && at('shots') !== '' ? shotCount(Number(at('shots'))) : null;
    scores.push({ step, task: at('task'), metric, value, shots, source: file });
  });
  return scores;
}

async function filesUnder(path: string): Promise<string[]> {
  let s;
  try {
    s = await stat(path);
  } catch (err) {
    throw new InputError(`${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`, { cause: err });
  }
  if (!s.isDirectory()) return [path];
  const out: string[] = [];
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(full)));
    else if (/\.(json|csv)$/i.test(entry.name)) out.push(full);
  }
  return out;
}

/** Every score of `metric` under `path`; one (step, task, shots) scored twice differently is an error. */
export async function readBenchmarks(path: string, metric = 'acc'): Promise<BenchmarkScore[]> {
  const files = await filesUnder(path);
  const seen = new Map<string, BenchmarkScore>();
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    const scores = file.toLowerCase().endsWith('.csv') ? parseScoresCsv(file, text, metric) : parseHarnessJson(file, text, metric);
    for (const s of scores) {
      const key = `${s.task}\0${s.shots}\0${s.step}`;
      const before = seen.get(key);
      if (before && before.value !== s.value) {
        throw new InputError(`${file}: ${s.task}${s.shots === null ? '' : ` (${s.shots}-shot)`} at step ${s.step} is ${s.value}, but ${basename(before.source)} says ${before.value}`);
      }
      if (!before) seen.set(key, s);
    }
  }
  if (seen.size === 0) throw new InputError(`${path}: no "${metric}" score in ${files.length === 1 ? 'this file' : `${files.length} files`}`);
  return [...seen.values()].sort((a, b) => (a.task < b.task ? -1 : a.task > b.task ? 1 : (a.shots ?? -1) - (b.shots ?? -1) || a.step - b.step));
}
