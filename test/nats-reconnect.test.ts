import test from 'ava';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../proto/codec.js';
import type { ShardTask } from '../proto/shard.js';
import { NatsBackend } from '../worker/backends/nats.js';
import { executeShard } from '../worker/execute-shard.js';
import { ShardService } from '../worker/serve.js';
import { natsConnect } from '../worker/transport/nats-connect.js';
import { startNatsWorker } from '../worker/transport/nats-worker.js';
import { GatedBackend } from './helpers/gated-backend.js';
import { NatsServer, natsServerMissing } from './helpers/nats-server.js';
import { faultModel } from './helpers/fault-model.js';
import { until } from './helpers/until.js';
import { runCli } from './helpers/run-cli.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import { metricTotal, shardsDone, startWorkerProcess, type WorkerProcess } from './helpers/worker-process.js';

/**
 * The coordinator's own NATS connection cut mid-run (its TCP connection to nats-server reset
 * through a relay, and down for 3 s; the workers' connections untouched): it reconnects and sends the shards in
 * flight again. The run must end with the embedded run's numbers, each shard counted once,
 * and without a single shard failing — the replies lost in the cut are not the workers' fault.
 */
const missing = natsServerMissing();
const workers: WorkerProcess[] = [];
let server: NatsServer | undefined;
let relay: TcpProxy | undefined;
let dir = '';
let cleanup = async () => {};
let model = '';
let embedded: { samples: unknown; stats: { shards: number; edges: number } };
// Shards of 50 KB, done in well under the 3 s a cut lasts: the ones in flight at a cut are
// answered while the coordinator is away.
const args = (m = model) => ['analyze', m, '--full', '--json', '--shard-mb', '0.05'];

if (!missing) {
  test.before(async () => {
    ({ dir, cleanup, model, embedded } = await faultModel('neuromfa-nats-reconnect-', args));
    server = await NatsServer.start();
    relay = await startTcpProxy({ port: server.port });
  });

  test.after.always(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    await relay?.close();
    await server?.stop();
    await cleanup();
  });
}


(missing ? test.skip : test.serial)(`the coordinator's NATS connection reset twice mid-run: shards in flight are sent again, none fails, the numbers are the embedded run's${missing ? ` (${missing})` : ''}`, async (t) => {
  t.timeout(100_000);
  for (let i = 0; i < 2; i++) workers.push(await startWorkerProcess(['--threads', '1', '--nats', server!.url, '--model-root', dir, '--metrics-port', '0']));
  const done = async () => (await shardsDone(workers[0])) + (await shardsDone(workers[1]));
  const busy = async () => (await Promise.all(workers.map(async (w) => metricTotal(await w.metrics(), 'neuromfa_worker_shards_in_flight')))).every((n) => n === 1);
  const run = runCli([...args(), '--nats', `nats://${relay!.address}`]);
  await until('shards done on NATS', async () => (await done()) >= 3);
  // Down for 3 s with both workers mid-shard, under the coordinator's 5 s liveness window: their
  // replies are lost, and only sending the shards again saves them from failing as "stopped answering".
  await until('both workers mid-shard', busy);
  relay!.cut(3000);
  const before = await done();
  await until('more shards done after the cut', async () => (await done()) >= before + 5);
  await until('both workers mid-shard again', busy);
  relay!.cut(3000);
  const r = await run;
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.deepEqual(out.samples, embedded.samples);
  t.is(out.stats.shards, embedded.stats.shards);
  t.is(out.stats.edges, embedded.stats.edges, 'a shard answered twice is counted once');
  // This server has no JetStream: the one line saying so, and nothing else (no shard failed, no worker lost).
  t.regex(r.stderr, /^neuromfa: NATS server \S+ has no JetStream: start it with -js .*; shards go by core-NATS request\/reply instead, and a coordinator that dies loses the shards in flight\n$/);
  t.true(relay!.connections >= 3, `the coordinator connected ${relay!.connections} times`);
  t.true((await done()) >= embedded.stats.shards);
});

const timeless = <T extends { seconds: number }>(r: T) => ({ ...r, seconds: 0 });

(missing ? test.skip : test.serial)(`a reply sent while the coordinator is away is lost: the shard is sent again on reconnect and answered${missing ? ` (${missing})` : ''}`, async (t) => {
  const gated = new GatedBackend();
  gated.open();
  const service = new ShardService({ threads: 1, maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES, backend: gated });
  await service.whenReady();
  gated.shut();
  const nc = await natsConnect({ servers: server!.url });
  const subject = 'neuromfa.reconnect';
  const transport = await startNatsWorker(service, nc, { subject, maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES, heartbeatMs: 200 });
  // The coordinator through the relay; the worker straight to the server.
  const coordinator = await natsConnect({ servers: `nats://${relay!.address}` });
  const backend = new NatsBackend(coordinator, { subject, livenessMs: 1500 });
  const disconnected = (async () => {
    for await (const s of coordinator.status()) if (s.type === 'disconnect') return;
  })();
  try {
    const weights = Float64Array.from({ length: 4000 }, (_, k) => 1 / (1.2 + ((k * 7.31) % 140)));
    const task: ShardTask = { id: 7, measure: 'mfa', params: { threshold: 150, decimals: 1, minNeighbors: 5, q: [-1, 0, 1, 2] }, input: { kind: 'groups', weights, stride: 1, offsets: Uint32Array.of(0, 2000, 4000) } };
    const computed = gated.started;
    const running = backend.run(task);
    await gated.reached(computed + 1);
    // The coordinator away for 1 s; meanwhile the worker finishes and replies into the void.
    relay!.cut(1000);
    await disconnected;
    gated.open();
    t.deepEqual(timeless(await running), timeless(await executeShard(task)));
    t.is(gated.started, computed + 2, 'computed twice: once for the lost reply, once for the shard sent again');
  } finally {
    gated.open();
    await backend.close();
    await coordinator.close();
    await transport.shutdown();
    await service.close();
  }
});
