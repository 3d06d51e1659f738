import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runSeries } from '../coordinator/analysis/emergence-series.js';
import { analyzeModel, type AnalyzeOptions } from '../coordinator/analysis/model-analysis.js';
import { PiscinaBackend } from '../worker/backends/piscina.js';
import { MockHub } from '../test/helpers/mock-hub.js';
import { dataDir, pythiaShaped } from './datasets.js';
import type { BenchSection } from './cli-runs.js';

/**
 * Reading checkpoints from the hub: a pythia-410m-shaped checkpoint (float16, hidden 1024,
 * 24 blocks, 0.8 GB) served by the mock hub on loopback with 20 ms added to every request,
 * as a stand-in for a real round trip. Per checkpoint: HTTP requests, bytes downloaded,
 * seconds cold (empty cache), with the range cache (analyze again) and with the result
 * cache (an emergence series run again).
 */

const REPO = 'EleutherAI/pythia-410m-shaped';
const LATENCY_MS = 20;

export const benchHub: BenchSection = async (say, log) => {
  const dir = await pythiaShaped('pythia-410m', 1024, 24, log);
  const hub = await MockHub.start();
  const cacheDir = join(dataDir, 'hub-bench-cache');
  const saved = { ...process.env };
  const backend = new PiscinaBackend(4);
  /** One timed run: requests, bytes and seconds as the mock counted them. */
  const run = async (label: string, fn: () => Promise<{ fileBytes?: number }>) => {
    hub.resetCounters();
    const t0 = performance.now();
    const r = await fn();
    const s = (performance.now() - t0) / 1000;
    const bytes = hub.bytesServed.hub + hub.bytesServed.cdn;
    const share = r.fileBytes ? ` (${((100 * bytes) / r.fileBytes).toFixed(2)}% of ${(r.fileBytes / 1e6).toFixed(0)} MB)` : '';
    say(`hub: ${label}: ${hub.log.length} requests, ${(bytes / 1e6).toFixed(2)} MB${share}, ${s.toFixed(2)} s per checkpoint`);
  };
  try {
    log('loading the checkpoint into the mock hub ...');
    await hub.addCommitFromDir(REPO, dir);
    hub.latencyMs = LATENCY_MS;
    Object.assign(process.env, { HF_ENDPOINT: hub.hubUrl, NEUROMFA_CACHE: cacheDir, HF_HUB_CACHE: join(cacheDir, 'no-hf-cache') });
    delete process.env.HF_TOKEN;
    const params = { threshold: 150, decimals: 0, minNeighbors: 10, q: Array.from({ length: 61 }, (_, i) => (i * 10 - 300) / 100) };
    const optsFor = (samples: number[]): AnalyzeOptions => ({ samples, layerSample: 32, params, shardsPerSample: 4, shardBytes: 32 << 20 });
    const analyze = (opts: AnalyzeOptions) => async () => (await analyzeModel(`hf://${REPO}`, opts, backend)).stats;
    const ten = Array.from({ length: 10 }, (_, i) => i);
    say(`hub: pythia-410m-shaped (F16, hidden 1024, 24 blocks), mock hub with ${LATENCY_MS} ms per request, at most 8 requests in flight`);
    for (const samples of [[0], ten]) {
      const opts = optsFor(samples);
      const what = samples.length === 1 ? 'sample 0' : 'samples 0-9';
      await rm(cacheDir, { recursive: true, force: true });
      await run(`${what}, cold`, analyze(opts));
      await run(`${what}, range cache`, analyze(opts));
      const series = () => runSeries([{ label: 'main', model: `hf://${REPO}` }], opts, backend, undefined, { keepDuplicates: false });
      await series();
      await run(`${what}, result cache (emergence rerun)`, async () => {
        await series();
        return {};
      });
    }
    // The knobs for a far-away CDN: more requests in flight, wider coalescing.
    for (const [concurrency, gapKb] of [
      ['32', '4'],
      ['32', '32'],
    ]) {
      Object.assign(process.env, { NEUROMFA_HUB_CONCURRENCY: concurrency, NEUROMFA_HUB_GAP_KB: gapKb });
      await rm(cacheDir, { recursive: true, force: true });
      await run(`samples 0-9, cold, NEUROMFA_HUB_CONCURRENCY=${concurrency} NEUROMFA_HUB_GAP_KB=${gapKb}`, analyze(optsFor(ten)));
    }
  } finally {
    process.env = saved;
    await backend.close();
    await hub.stop();
  }
};
