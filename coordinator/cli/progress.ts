import { createRequire } from 'node:module';
import type cliProgressTypes from 'cli-progress';
import type { RunEvent, RunListener } from '../run/run-shards.js';

/**
 * Progress on stderr: a bar on a terminal, plain lines (`--progress` without a terminal:
 * batch jobs, `kubectl logs`), or nothing — piped output and --json consumers never see
 * control characters. What a cluster run loses on the way — a worker dropped, a shard
 * retried — is reported as a line in every mode (`report`), because a run that finishes
 * correctly after losing half its workers should still say so.
 *
 * The total is known before the bar is drawn: an emergence series announces each checkpoint
 * (`checkpoint` events), and once the first one has planned its shards every later one is
 * counted with as many (one layout and one sample set per series), corrected as each plans.
 * So the bar never starts full at 0/0 and does not reach its end at the first checkpoint.
 */
export type ProgressMode = 'bar' | 'lines' | 'off';

/** Plain-line mode writes at most one line per this many milliseconds (and one per checkpoint). */
const LINE_INTERVAL_MS = 10_000;

export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '-';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const formatRate = (r: number) => (r >= 1e6 ? `${(r / 1e6).toFixed(1)}M` : r.toFixed(0));

/**
 * Shards planned and done across a run, with a series' checkpoints; no I/O. A series reads
 * the next checkpoint while the current one computes, so `checkpoint` events name what is
 * being read, and each `planned` event is one checkpoint's shards (analyzeModel plans once).
 */
export class ProgressState {
  /** Shards of each checkpoint planned so far, in order. */
  private planned: number[] = [];
  private of = 1;
  checkpoint: { label: string; index: number; of: number } | undefined;
  done = 0;
  private computed = 0;
  private edges = 0;
  private firstComputedAt: number | undefined;
  reading: { tensors: number; of: number; bytes: number } | undefined;
  /** A series fanned out over workers: each shard's checkpoint, and shards left per checkpoint. */
  private fanned: { labelOf: Map<number, string>; left: Map<string, number>; of: number } | undefined;
  /** Bytes read per worker, from the sampled shards they answered. */
  readonly bytesByWorker = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  /**
   * Shards of the whole run: the plans so far, and for each checkpoint not yet planned as
   * many as the last plan; undefined before any plan. A checkpoint served from the result
   * cache plans nothing, so on a hub series this can stay above the shards actually run.
   */
  get total(): number | undefined {
    if (this.planned.length === 0) return undefined;
    // The largest plan: the current checkpoint's may still be growing sample by sample.
    const estimate = Math.max(...this.planned);
    const sum = this.planned.reduce((a, b) => a + b, 0) + Math.max(0, this.of - this.planned.length) * estimate;
    return Math.max(sum, this.done);
  }

  apply(e: RunEvent): void {
    if (e.type === 'checkpoint') {
      this.checkpoint = { label: e.label, index: e.index, of: e.of };
      this.of = e.of;
      this.reading = undefined;
    } else if (e.type === 'read') {
      this.reading = e.tensors < e.of ? { tensors: e.tensors, of: e.of, bytes: e.bytes } : undefined;
    } else if (e.type === 'planned') {
      if (e.adds && this.planned.length > 0) this.planned[this.planned.length - 1] += e.shards;
      else this.planned.push(e.shards);
      if (e.checkpoints) {
        const labelOf = new Map(e.checkpoints.flatMap((c) => c.shards.map((id) => [id, c.label] as const)));
        this.fanned = { labelOf, left: new Map(e.checkpoints.map((c) => [c.label, c.shards.length])), of: e.checkpoints.length };
      }
    } else if (e.type === 'shard-done') {
      this.done++;
      const label = this.fanned?.labelOf.get(e.id);
      if (label !== undefined) this.fanned!.left.set(label, this.fanned!.left.get(label)! - 1);
      if (e.result.measure === 'sampled') this.bytesByWorker.set(e.result.worker, (this.bytesByWorker.get(e.result.worker) ?? 0) + e.result.bytesRead);
      // Shards restored by --resume count as done but not towards the rate.
      if (e.resumed) return;
      this.computed++;
      this.edges += e.result.edges;
      this.firstComputedAt ??= this.now();
    }
  }

  /** Edges per second since the run's first computed shard. */
  rate(started: number): number {
    return this.edges / Math.max(1e-3, (this.now() - started) / 1000);
  }

  /** Seconds left at the rate shards were computed since the first one; undefined before two. */
  eta(): number | undefined {
    const total = this.total;
    if (total === undefined || this.computed < 2 || this.firstComputedAt === undefined) return undefined;
    const perShard = (this.now() - this.firstComputedAt) / 1000 / (this.computed - 1);
    return (total - this.done) * perShard;
  }

  /** `step64 (3/4)`, `checkpoints 3/12 done` when fanned out, or nothing outside a series. */
  where(): string {
    if (this.fanned) return ` checkpoints ${[...this.fanned.left.values()].filter((n) => n === 0).length}/${this.fanned.of} done`;
    const c = this.checkpoint;
    return c ? ` ${c.label} (${c.index + 1}/${c.of})` : '';
  }

  phase(): string {
    const r = this.reading;
    if (r) return ` | reading${this.checkpoint ? ` ${this.checkpoint.label}` : ''}: ${r.tensors}/${r.of} tensors, ${(r.bytes / 1e6).toFixed(1)} MB of rows`;
    if (this.bytesByWorker.size === 0) return '';
    const top = [...this.bytesByWorker].sort((a, b) => b[1] - a[1]);
    const more = top.length > 4 ? `, ${top.length - 4} more` : '';
    return ` | read by workers: ${top.slice(0, 4).map(([w, b]) => `${w} ${(b / 1e6).toFixed(1)} MB`).join(', ')}${more}`;
  }
}

export function progressBar(
  mode: ProgressMode,
  label: string,
  workers: number | undefined,
  report: (text: string) => void,
  now: () => number = () => performance.now(),
): { listener: RunListener; stop: () => void } {
  const m = mode;
  let live = workers ?? 0;
  const state = new ProgressState(now);
  const started = now();
  const workerText = () => (workers === undefined ? '' : ` | ${live} workers`);
  // Loaded for a bar only: piped and --progress runs never draw one.
  const cliProgress = m === 'bar' ? (createRequire(import.meta.url)('cli-progress') as typeof cliProgressTypes) : undefined;
  const bar =
    cliProgress
      ? new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: `${label}{where} {bar} {value}/{total} {unit}{workers} | {rate} edges/s | ETA {remaining}{phase}`,
            hideCursor: true,
            clearOnComplete: true,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  let drawn = false;
  let lastLine = -Infinity;
  let lastWhere = '';
  const say = (line: string) => report(`${bar && drawn ? '\r\x1b[2K' : ''}neuromfa: ${line}\n`);

  const render = (force = false) => {
    const total = state.total;
    // Before any shard is planned the bar counts the tensors whose rows are read.
    const [value, of, unit] = total === undefined ? [state.reading?.tensors ?? 0, state.reading?.of ?? 0, 'tensors read'] : [state.done, total, 'shards'];
    const payload = { where: state.where(), unit, workers: workerText(), rate: formatRate(state.rate(started)), remaining: formatEta(state.eta()), phase: total === undefined ? '' : state.phase() };
    if (m === 'bar') {
      if (of === 0) return; // never a full bar at 0/0
      if (!drawn) bar!.start(of, value, payload);
      else {
        bar!.setTotal(of);
        bar!.update(value, payload);
      }
      drawn = true;
    } else if (m === 'lines' && of > 0) {
      const t = now();
      const where = state.where();
      if (!force && where === lastWhere && t - lastLine < LINE_INTERVAL_MS) return;
      [lastLine, lastWhere] = [t, where];
      report(`neuromfa: ${label}${where}: ${value}/${of} ${unit}${workerText()}, ${payload.rate} edges/s, ETA ${payload.remaining}${payload.phase}\n`);
    }
  };

  const listener = (e: RunEvent) => {
    if (e.type === 'worker-lost') {
      live = e.live;
      say(`worker ${e.worker} left the run (${e.live} live): ${e.reason}`);
    } else if (e.type === 'workers') {
      live = e.live;
    } else if (e.type === 'retry') {
      say(`shard ${e.id} failed on ${e.worker} (attempt ${e.attempt}), retrying elsewhere: ${e.reason}`);
    } else if (e.type !== 'shard-started') {
      state.apply(e);
    }
    if (e.type !== 'shard-started' && e.type !== 'retry') render(e.type === 'planned' && state.done === 0);
  };
  const stop = () => {
    if (drawn) bar?.stop();
    if (m === 'lines' && state.done > 0) report(`neuromfa: ${label}: ${state.done} shards done in ${((now() - started) / 1000).toFixed(1)} s\n`);
  };
  return { listener, stop };
}
