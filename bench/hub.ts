import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { runCli, type BenchSection } from './cli-runs.js';
import { dataDir, pythiaShaped } from './datasets.js';

/**
 * Reading checkpoints from the hub (issue #9): a pythia-410m-shaped checkpoint (float16,
 * hidden 1024, 24 blocks) served by the tests' mock hub on loopback (in a process of its
 * own: bench/mock-hub-process.ts), with a round-trip delay
 * on every request and one link rate shared by all response bodies, as a stand-in for a
 * real CDN. Per link: a plain download of the whole file, then `analyze --samples 0` and
 * `--samples 0-9` as whole processes from an empty cache: seconds, requests, bytes, and the
 * ratio to the whole-file download on the same link. Then the range cache and the result
 * cache, and the same reads with the planner's choices overridden as the reader of issue #5
 * made them (8 in flight, 4 KiB gaps).
 */

const REPO = 'EleutherAI/pythia-410m-shaped';
const LINKS = [
  { rttMs: 30, mbPerSec: 100 },
  { rttMs: 80, mbPerSec: 20 },
];

export const benchHub: BenchSection = async (say, log) => {
  const dir = await pythiaShaped('pythia-410m', 1024, 24, log);
  const hub = await startMockHub();
  const cacheDir = join(dataDir, 'hub-bench-cache');
  const saved = { ...process.env };
  try {
    log('loading the checkpoint into the mock hub ...');
    await hub.ask({ add: [REPO, dir] });
    Object.assign(process.env, { HF_ENDPOINT: hub.hubUrl, NEUROMFA_CACHE: cacheDir, HF_HUB_CACHE: join(cacheDir, 'no-hf-cache') });
    delete process.env.HF_TOKEN;
    for (const link of LINKS) {
      await hub.ask({ link: [link.rttMs, link.mbPerSec * 1e6] });
      const whole = await wholeFileSeconds(hub.hubUrl, REPO);
      await hub.ask({ counters: true });
      const tag = `${link.rttMs} ms / ${link.mbPerSec} MB/s`;
      say(`hub ${tag}: whole-file download ${(whole.bytes / 1e6).toFixed(0)} MB in ${whole.seconds.toFixed(2)} s`);
      const analyze = async (label: string, samples: string, env: Record<string, string> = {}) => {
        Object.assign(process.env, env);
        const r = await runCli(['analyze', `hf://${REPO}`, '--samples', samples, '--json']);
        for (const k of Object.keys(env)) delete process.env[k];
        const { requests, bytes } = (await hub.ask({ counters: true })) as { requests: number; bytes: number };
        say(
          `hub ${tag}: ${label}: ${r.seconds.toFixed(2)} s, ${requests} requests, ${(bytes / 1e6).toFixed(1)} MB` +
            ` (${((100 * bytes) / r.json.stats.fileBytes).toFixed(1)}% of the file), ${(r.seconds / whole.seconds).toFixed(2)}× the whole-file time, peak RSS ${r.maxRssMB.toFixed(0)} MB`,
        );
        return r;
      };
      for (const samples of ['0', '0-9']) {
        await rm(cacheDir, { recursive: true, force: true });
        await analyze(`samples ${samples}, cold`, samples);
        await analyze(`samples ${samples}, range cache`, samples);
      }
      if (link.rttMs === LINKS[0].rttMs) {
        await rm(cacheDir, { recursive: true, force: true });
        await analyze('samples 0, cold, as issue #5 read it (NEUROMFA_HUB_CONCURRENCY=8 NEUROMFA_HUB_GAP_KB=4)', '0', { NEUROMFA_HUB_CONCURRENCY: '8', NEUROMFA_HUB_GAP_KB: '4' });
      }
    }
  } finally {
    process.env = saved;
    hub.stop();
  }
};

/** bench/mock-hub-process.ts, asked one JSON line at a time. */
async function startMockHub() {
  const p = spawn(process.execPath, [join(process.cwd(), 'dist', 'bench', 'mock-hub-process.js')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: p.stdout! })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await lines.next()).value as string) as Record<string, unknown>;
  const { hubUrl } = (await next()) as { hubUrl: string };
  return {
    hubUrl,
    ask: async (cmd: object) => {
      p.stdin!.write(JSON.stringify(cmd) + '\n');
      return next();
    },
    stop: () => p.kill(),
  };
}

/** One GET of the whole weight file through the CDN, as `huggingface-cli download` would. */
async function wholeFileSeconds(hubUrl: string, repo: string): Promise<{ seconds: number; bytes: number }> {
  const t0 = performance.now();
  const first = await request(`${hubUrl}/${repo}/resolve/main/model.safetensors`, { method: 'GET' });
  await first.body.dump();
  const location = first.headers.location as string;
  const res = await request(location, { method: 'GET' });
  let bytes = 0;
  for await (const chunk of res.body) bytes += chunk.length;
  return { seconds: (performance.now() - t0) / 1000, bytes };
}
