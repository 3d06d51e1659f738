import cliProgress from 'cli-progress';
import type { RunEvent, RunListener } from '../run/run-shards.js';

/**
 * A progress bar on stderr (shards done, edges/s, ETA), only on a terminal: piped output and
 * --json consumers never see control characters.
 */
export function progressBar(enabled: boolean, label: string, workers?: number): { listener: RunListener; stop: () => void } {
  if (!enabled) return { listener: () => {}, stop: () => {} };
  let live = workers ?? 0;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} {bar} {value}/{total} shards${workers === undefined ? '' : ' | {workers} workers'} | {rate} edges/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = performance.now();
  let edges = 0;
  let total = 0;
  let running = false;
  const listener = (e: RunEvent) => {
    if (e.type === 'planned') {
      total += e.shards;
      if (!running) bar.start(total, 0, { rate: '0', workers: live });
      else bar.setTotal(total);
      running = true;
    } else if (e.type === 'worker-lost') {
      live = e.live;
      bar.update({ workers: live });
    } else if (e.type === 'shard-done') {
      // Shards restored by --resume count as done but not towards the rate.
      if (e.resumed) return void bar.increment(1);
      edges += e.result.edges;
      const rate = edges / ((performance.now() - started) / 1000);
      bar.increment(1, { rate: rate >= 1e6 ? `${(rate / 1e6).toFixed(1)}M` : rate.toFixed(0) });
    }
  };
  return { listener, stop: () => running && bar.stop() };
}
