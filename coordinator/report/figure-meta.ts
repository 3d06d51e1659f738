import { basename, dirname, resolve } from 'node:path';
import type { MfaParams } from '../../proto/shard.js';
import { VERSION } from '../../worker/version.js';

/** What every report states about its std (the reference uses np.std). */
const STD_NOTE = 'population standard deviation over samples (ddof 0, as the reference np.std)';

/** A model as a reader names it: `OWNER/NAME@REV` for the hub, the directory name for a local path (never `../x`). */
export function modelName(model: string): string {
  if (model.startsWith('hf://')) return model.slice('hf://'.length);
  // A weight file names its checkpoint by the directory holding it.
  const path = resolve(model);
  return /\.(safetensors|bin)$/.test(path) ? basename(dirname(path)) : basename(path);
}

/** A series: the hub repository, or the directory holding the local checkpoints. */
export function seriesName(models: readonly string[]): string {
  const hub = models.find((m) => m.startsWith('hf://'));
  if (hub) return modelName(hub).replace(/@.*$/, '');
  const parents = new Set(models.map((m) => dirname(resolve(m))));
  return parents.size === 1 ? basename([...parents][0]) : modelName(models[0]);
}

/** `-3:3:0.1 (61 values)` for an even grid, else the list. */
function qGridText(q: readonly number[]): string {
  const step = q[1] - q[0];
  const even = q.every((v, k) => k === 0 || Math.abs(v - q[k - 1] - step) < 1e-9 * Math.max(1, Math.abs(step)));
  return even ? `${q[0]}:${q[q.length - 1]}:${Number(step.toPrecision(10))} (${q.length} values)` : q.join(',');
}

export interface RunDescription {
  mode: 'sampled' | 'full';
  layerSample: number | null;
  /** Sample indices analysed. */
  samples: ReadonlyArray<number | 'full'>;
  params: MfaParams;
  filter?: number;
}

const sampleText = (s: ReadonlyArray<number | 'full'>) => {
  const n = s.filter((x): x is number => x !== 'full');
  const run = n.length > 2 && n.every((v, i) => i === 0 || v === n[i - 1] + 1);
  return run ? `${n[0]}-${n[n.length - 1]}` : n.join(',');
};

/** What was sampled, then the mfa parameters, as the CLI flags name them. */
function paramsLines(r: RunDescription): [string, string] {
  const p = r.params;
  const what = r.mode === 'full' ? 'full NIN' : `samples ${sampleText(r.samples)}, layer sample ${r.layerSample}`;
  return [`${what}${r.filter === undefined ? '' : `, filter ${r.filter}`}`, `threshold ${p.threshold}, decimals ${p.decimals}, min-neighbors ${p.minNeighbors}, q ${qGridText(p.q)}`];
}

/** The parameters in one line. */
const paramsText = (r: RunDescription) => paramsLines(r).join(' · ');

/** A figure's subtitle: what was analysed (with its commit), how, and by which version (the PNG travels alone). */
export function figureSubtitle(what: string, r: RunDescription): string[] {
  // Three short lines: a figure is about 600 px wide and its subtitle should not widen it.
  const [sampled, mfa] = paramsLines(r);
  return [what, sampled, `${mfa} · neuromfa ${VERSION}`];
}

/** report.html's header: the same facts, and how the report was made. */
export function pageMeta(what: Record<string, string>, r: RunDescription, info: RunInfo): Record<string, string> {
  return { ...what, parameters: paramsText(r), std: info.stdDefinition, command: info.command, version: `neuromfa ${info.version}`, created: info.createdAt };
}

export interface RunInfo {
  version: string;
  command: string;
  createdAt: string;
  /** Every `std` in the report is this (the population std). */
  stdDefinition: string;
}

const shellWord = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);

/** Which neuromfa made a report, how and when: every report.json carries it. */
export function runInfo(argv: readonly string[] = process.argv.slice(2)): RunInfo {
  return { version: VERSION, command: ['neuromfa', ...argv].map(shellWord).join(' '), createdAt: new Date().toISOString(), stdDefinition: STD_NOTE };
}
