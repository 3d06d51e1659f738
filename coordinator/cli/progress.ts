import cliProgress from 'cli-progress';
import type { RunEvent, RunListener } from '../run/run-shards.js';

/**
 * A progress bar on stderr (shards done, live workers, edges/s, ETA), only on a terminal:
 * piped output and --json consumers never see control characters. What a cluster run loses
 * on the way — a worker dropped, a shard retried — is reported as a line either way (`report`),
 * because a run that finishes correctly after losing half its workers should still say so.
 */
export function progressBar(enabled: boolean, label: string, workers: number | undefined, report: (text: string) => void): { listener: RunListener; stop: () => void } {
  let live = workers ?? 0;
  const bar = enabled
    ? new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: `${label} {bar} {value}/{total} {unit}${workers === undefined ? '' : ' | {workers} workers'} | {rate} edges/s | ETA {eta_formatted}{phase}`,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const started = performance.now();
  let edges = 0;
  let total = 0;
  let done = 0;
  let running = false;
  // On a terminal the line first clears the bar, which redraws on its next update.
  const say = (line: string) => report(`${bar && running ? '\r\x1b[2K' : ''}neuromfa: ${line}\n`);
  const start = () => {
    if (!running) bar?.start(total, 0, { rate: '0', workers: live, unit: 'shards', phase: '' });
    running = true;
  };
  const listener = (e: RunEvent) => {
    if (e.type === 'planned') {
      total += e.shards;
      start();
      bar?.setTotal(total);
      bar?.update(done, { unit: 'shards', phase: '' });
    } else if (e.type === 'read') {
      // Before a sampled run has shards its rows are read (from the hub, most of the run):
      // the bar counts tensors read until the shards are planned.
      start();
      bar?.setTotal(e.of);
      bar?.update(e.tensors, { unit: 'tensors read', phase: ` | ${(e.bytes / 1e6).toFixed(1)} MB of rows` });
    } else if (e.type === 'worker-lost') {
      live = e.live;
      say(`worker ${e.worker} left the run (${e.live} live): ${e.reason}`);
      bar?.update({ workers: live });
    } else if (e.type === 'workers') {
      live = e.live;
      bar?.update({ workers: live });
    } else if (e.type === 'retry') {
      say(`shard ${e.id} failed on ${e.worker} (attempt ${e.attempt}), retrying elsewhere: ${e.reason}`);
    } else if (e.type === 'shard-done') {
      // Shards restored by --resume count as done but not towards the rate.
      done++;
      if (e.resumed) return void bar?.update(done);
      edges += e.result.edges;
      const rate = edges / ((performance.now() - started) / 1000);
      bar?.update(done, { rate: rate >= 1e6 ? `${(rate / 1e6).toFixed(1)}M` : rate.toFixed(0) });
    }
  };
  return { listener, stop: () => void (running && bar?.stop()) };
}
