import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError, UsageError } from '../../proto/errors.js';
import type { ModelSize } from './model-size.js';

/**
 * `compare`: several `emergence` runs (model sizes, deduped or not) side by side, read from
 * their report.json: E against step for each, and E at one step against model size.
 */

export interface RunPoint {
  label: string;
  step: number | null;
  E: number | null;
  EStd: number | null;
}

export interface ComparedRun {
  name: string;
  /** The report.json read. */
  path: string;
  layout: string;
  mode: string;
  params: unknown;
  size: ModelSize;
  checkpoints: RunPoint[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const numOrNull = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** A run directory holding report.json, or the report.json itself. */
export async function readRun(dirOrFile: string): Promise<Omit<ComparedRun, 'name'> & { series: string }> {
  const path = dirOrFile.endsWith('.json') ? dirOrFile : join(dirOrFile, 'report.json');
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`${path}: ${code === 'ENOENT' ? 'no such file (compare reads the report.json that emergence --out writes)' : `not readable JSON (${(err as Error).message})`}`, { cause: err });
  }
  if (!isObject(json) || !Array.isArray(json.checkpoints)) throw new InputError(`${path}: not an emergence report (no "checkpoints" list)`);
  const size = json.size;
  if (!isObject(size) || typeof size.checkpointParameters !== 'number' || typeof size.layoutParameters !== 'number') {
    throw new InputError(`${path}: no model size ("size"): written by an older neuromfa; run emergence again to compare it`);
  }
  const checkpoints = json.checkpoints.map((c: unknown, i: number): RunPoint => {
    if (!isObject(c) || typeof c.label !== 'string') throw new InputError(`${path}: checkpoints[${i}] has no label`);
    return { label: c.label, step: numOrNull(c.step), E: numOrNull(c.E), EStd: numOrNull(c.EStd) };
  });
  const models = json.checkpoints.map((c: Record<string, unknown>) => String(c.model ?? ''));
  return { path, layout: String(json.layout ?? ''), mode: String(json.mode ?? ''), params: json.params, size: size as unknown as ModelSize, checkpoints, series: seriesOf(models, dirOrFile) };
}

/** A run's name: its hub repository, the directory holding its local checkpoints, else the run directory's name. */
function seriesOf(models: string[], dirOrFile: string): string {
  const hub = models.find((m) => m.startsWith('hf://'));
  if (hub) return hub.slice('hf://'.length).replace(/@.*$/, '');
  const parents = new Set(models.filter(Boolean).map((m) => dirname(resolve(m))));
  if (parents.size === 1) return basename([...parents][0]);
  return basename(resolve(dirOrFile.endsWith('.json') ? dirname(dirOrFile) : dirOrFile));
}

/** Runs in the order given, named by `names` or their series (the directory added where two share one). */
export async function readRuns(dirs: string[], names?: string[]): Promise<ComparedRun[]> {
  if (names && names.length !== dirs.length) throw new UsageError(`--names names ${names.length} runs but ${dirs.length} were given`);
  const runs = await Promise.all(dirs.map(readRun));
  const counts = new Map<string, number>();
  for (const r of runs) counts.set(r.series, (counts.get(r.series) ?? 0) + 1);
  return runs.map(({ series, ...r }, i) => ({ ...r, name: names?.[i] ?? (counts.get(series)! > 1 ? `${series} (${basename(resolve(dirs[i]))})` : series) }));
}

/** The step E is compared at: the one asked for, else the largest step every run has. */
export function comparisonStep(runs: readonly ComparedRun[], asked: number | undefined): number {
  if (asked !== undefined) return asked;
  const common = runs.map((r) => new Set(r.checkpoints.filter((c) => c.E !== null && c.step !== null).map((c) => c.step!)));
  const shared = [...common[0]].filter((s) => common.every((set) => set.has(s)));
  if (shared.length === 0) throw new UsageError('the runs share no training step with a value of E: pick one with --step N');
  return Math.max(...shared);
}

export interface SizePoint {
  name: string;
  layoutParameters: number;
  checkpointParameters: number;
  label: string;
  step: number;
  E: number;
  EStd: number | null;
}

/** E of each run at `step` (runs without it are listed in `missing`), in increasing model size. */
export function eAtStep(runs: readonly ComparedRun[], step: number): { atStep: SizePoint[]; missing: string[] } {
  const points: SizePoint[] = [];
  const missing: string[] = [];
  for (const r of runs) {
    const c = r.checkpoints.find((x) => x.step === step && x.E !== null);
    if (!c) missing.push(r.name);
    else points.push({ name: r.name, layoutParameters: r.size.layoutParameters, checkpointParameters: r.size.checkpointParameters, label: c.label, step, E: c.E!, EStd: c.EStd });
  }
  return { atStep: points.sort((a, b) => a.checkpointParameters - b.checkpointParameters), missing };
}

/** What differs between runs and makes the comparison less direct: mode and parameters. */
export function differences(runs: readonly ComparedRun[]): string[] {
  const out: string[] = [];
  for (const [what, key] of [['mode', (r: ComparedRun) => r.mode], ['parameters', (r: ComparedRun) => JSON.stringify(r.params)], ['layout', (r: ComparedRun) => r.layout]] as const) {
    const values = new Set(runs.map(key));
    if (values.size > 1) out.push(`the runs differ in ${what}: ${runs.map((r) => `${r.name}: ${key(r)}`).join('; ')}`);
  }
  return out;
}
