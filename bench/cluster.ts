import { NatsServer, natsServerMissing } from '../test/helpers/nats-server.js';
import { startWorkerProcess, type WorkerProcess } from '../test/helpers/worker-process.js';
import { best, type Run, type BenchSection } from './cli-runs.js';
import { dataDir, pythiaShaped } from './datasets.js';

/**
 * Full NIN of the pythia-160m-shaped checkpoint on 1 and 2 single-threaded worker processes on
 * loopback, over gRPC and over NATS, against the embedded run with as many threads. Workers are
 * started (and pass their self-test) before the clock starts, as in a deployment; each figure
 * is the best of three. Edges/s and the ratios use the run's own analysis time (stats.seconds:
 * planning, dispatch, merge and fits, without Node's start-up, which is the same for all).
 */
export const benchCluster: BenchSection = async (say, log) => {
  const dir = await pythiaShaped('pythia-160m', 768, 12, log);
  const args = ['analyze', dir, '--full', '--json'];
  const analysis = (r: Run) => r.json.stats.seconds as number;
  const run = (extra: string[]) => best([...args, ...extra], 3, analysis);
  const rate = (r: Run) => `${(r.json.stats.edges / analysis(r) / 1e6).toFixed(1)}M edges/s (${analysis(r).toFixed(3)} s analysis, ${r.seconds.toFixed(3)} s whole process)`;

  const embedded = [await run(['--threads', '1']), await run(['--threads', '2'])];
  say(`cluster baseline: embedded --threads 1: ${rate(embedded[0])}; --threads 2: ${rate(embedded[1])}`);

  const transports: Array<[string, (n: number) => Promise<{ flags: string[]; stop: () => Promise<void> }>]> = [
    [
      'gRPC',
      async (n) => {
        const ws: WorkerProcess[] = [];
        for (let i = 0; i < n; i++) ws.push(await startWorkerProcess(['--threads', '1', '--grpc', '127.0.0.1:0', '--model-root', dataDir]));
        return { flags: ['--workers', ws.map((w) => `grpc://${w.grpcAddress}`).join(',')], stop: async () => void (await Promise.all(ws.map((w) => w.stop()))) };
      },
    ],
  ];
  const natsMissing = natsServerMissing();
  if (natsMissing) say(`cluster over NATS not measured: ${natsMissing}`);
  else {
    transports.push([
      'NATS',
      async (n) => {
        const server = await NatsServer.start();
        const ws: WorkerProcess[] = [];
        for (let i = 0; i < n; i++) ws.push(await startWorkerProcess(['--threads', '1', '--nats', server.url, '--model-root', dataDir]));
        return {
          flags: ['--nats', server.url],
          stop: async () => {
            await Promise.all(ws.map((w) => w.stop()));
            await server.stop();
          },
        };
      },
    ]);
  }
  for (const [name, start] of transports) {
    const runs: Run[] = [];
    for (const n of [1, 2]) {
      const cluster = await start(n);
      try {
        runs.push(await run(cluster.flags));
      } finally {
        await cluster.stop();
      }
      const r = runs[n - 1];
      const overhead = analysis(r) / analysis(embedded[n - 1]) - 1;
      say(`cluster ${name}, ${n} single-threaded worker${n > 1 ? 's' : ''}: ${rate(r)}, ${r.json.stats.shards} shards; overhead vs embedded --threads ${n}: ${(100 * overhead).toFixed(1)}%`);
    }
    say(`cluster ${name}: speedup of 2 workers over 1: ${(analysis(runs[0]) / analysis(runs[1])).toFixed(2)}×`);
  }
};
