import { cpus, totalmem } from 'node:os';
import type { BenchSection } from './cli-runs.js';
import { benchCluster } from './cluster.js';
import { benchClusterSeries } from './cluster-series.js';
import { benchCore } from './core.js';
import { benchGpu } from './gpu.js';
import { benchHub } from './hub.js';

/**
 * `npm run bench [-- SECTION...]`: every section, or the ones named. Result lines go to
 * stdout, ready for bench/RESULTS.md; progress goes to stderr.
 */
const sections: Record<string, BenchSection> = {
  core: benchCore,
  gpu: benchGpu,
  hub: benchHub,
  // Throughput of shards over gRPC/NATS, then a series whose workers read the hub (issue 12).
  cluster: async (say, log) => {
    await benchCluster(say, log);
    await benchClusterSeries(say, log);
  },
};
const asked = process.argv.slice(2);
for (const name of asked) {
  if (!(name in sections)) {
    console.error(`npm run bench: no section ${name}; there are: ${Object.keys(sections).join(', ')}`);
    process.exit(2);
  }
}
const log = (s: string) => process.stderr.write(`${s}\n`);
const say = (s: string) => console.log(s);
say(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
for (const [name, section] of Object.entries(sections)) {
  if (asked.length && !asked.includes(name)) continue;
  log(`--- ${name}`);
  await section(say, log);
}
