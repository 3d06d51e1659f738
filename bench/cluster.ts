import { NatsServer, natsServerMissing } from '../test/helpers/nats-server.js';
import { startWorkerProcess, type WorkerProcess } from '../test/helpers/worker-process.js';
import { runCli, type BenchSection, type Run } from './cli-runs.js';
import { dataDir, pythiaShaped } from './datasets.js';

const ROUNDS = 5;

/**
 * Full NIN of the pythia-160m-shaped checkpoint on 1 and 2 single-threaded worker processes on
 * loopback, over gRPC and over NATS, against the embedded run with as many threads. Every
 * worker is started (and passes its self-test) before the clock starts, as in a deployment.
 * The configurations take turns for ROUNDS rounds and each keeps its best, so a slow moment
 * of a shared machine does not land on one of them. Edges/s and the ratios use the run's own
 * analysis time (stats.seconds: planning, dispatch, merge and fits, without Node's start-up,
 * the same for all); whole-process times are printed beside them.
 */
export const benchCluster: BenchSection = async (say, log) => {
  const model = await pythiaShaped('pythia-160m', 768, 12, log);
  const workers: WorkerProcess[] = [];
  const start = async (n: number, transport: string[]) => {
    const ws: WorkerProcess[] = [];
    for (let i = 0; i < n; i++) ws.push(await startWorkerProcess(['--threads', '1', '--model-root', dataDir, ...transport]));
    workers.push(...ws);
    return ws;
  };
  const natsMissing = natsServerMissing();
  const nats = natsMissing ? undefined : await NatsServer.start();
  try {
    const configs: Array<{ name: string; workers: number; flags: string[] }> = [
      { name: 'embedded --threads 1', workers: 1, flags: ['--threads', '1'] },
      { name: 'embedded --threads 2', workers: 2, flags: ['--threads', '2'] },
    ];
    for (const n of [1, 2]) {
      const ws = await start(n, ['--grpc', '127.0.0.1:0']);
      configs.push({ name: `gRPC, ${n} worker${n > 1 ? 's' : ''}`, workers: n, flags: ['--workers', ws.map((w) => `grpc://${w.grpcAddress}`).join(',')] });
    }
    if (nats) {
      for (const n of [1, 2]) {
        // One subject per deployment: the 1-worker and 2-worker groups share the server only.
        const subject = `neuromfa.bench${n}`;
        await start(n, ['--nats', nats.url, '--subject', subject]);
        configs.push({ name: `NATS, ${n} worker${n > 1 ? 's' : ''}`, workers: n, flags: ['--nats', nats.url, '--subject', subject] });
      }
    } else say(`cluster over NATS not measured: ${natsMissing}`);
    const best = new Map<string, Run>();
    const analysis = (r: Run) => r.json.stats.seconds as number;
    for (let round = 1; round <= ROUNDS; round++) {
      log(`cluster round ${round} of ${ROUNDS}`);
      for (const c of configs) {
        const r = await runCli(['analyze', model, '--full', '--json', ...c.flags]);
        const top = best.get(c.name);
        if (!top || analysis(r) < analysis(top)) best.set(c.name, r);
      }
    }
    const rate = (r: Run) => `${(r.json.stats.edges / analysis(r) / 1e6).toFixed(1)}M edges/s (${analysis(r).toFixed(3)} s analysis, ${r.seconds.toFixed(3)} s whole process)`;
    const embedded = (n: number) => best.get(`embedded --threads ${n}`)!;
    say(`cluster: full NIN of pythia-160m-shaped F16 (${embedded(1).json.stats.edges} edges, ${embedded(1).json.stats.shards} shards), best of ${ROUNDS} rounds`);
    for (const c of configs) {
      const r = best.get(c.name)!;
      const vs = c.name.startsWith('embedded') ? '' : `; overhead vs embedded --threads ${c.workers}: ${(100 * (analysis(r) / analysis(embedded(c.workers)) - 1)).toFixed(1)}%`;
      say(`  ${c.name}: ${rate(r)}${vs}`);
    }
    for (const t of nats ? ['gRPC', 'NATS'] : ['gRPC']) {
      say(`  ${t}: speedup of 2 workers over 1: ${(analysis(best.get(`${t}, 1 worker`)!) / analysis(best.get(`${t}, 2 workers`)!)).toFixed(2)}×`);
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await nats?.stop();
  }
};
