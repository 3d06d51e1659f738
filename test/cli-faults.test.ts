import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeReply, DEFAULT_MAX_MESSAGE_BYTES, encodeReply } from '../proto/codec.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { ShardService } from '../worker/serve.js';
import { startGrpcServer, type GrpcTransport } from '../worker/transport/grpc-server.js';
import { natsServerMissing, NatsServer } from './helpers/nats-server.js';
import { faultModel } from './helpers/fault-model.js';
import { until } from './helpers/until.js';
import { runCli } from './helpers/run-cli.js';
import { cliPath, repoRoot } from './helpers/shared.js';
import { shardsDone, startWorkerProcess, type WorkerProcess } from './helpers/worker-process.js';

/**
 * Faults of a cluster run through the CLI, as a user meets them: workers that answer garbage,
 * a nats-server restarted under the run, the coordinator itself killed and resumed. Each run
 * must end with the numbers of the embedded run, and say what it lost on the way.
 */
const workers: WorkerProcess[] = [];
const servers: GrpcTransport[] = [];
let dir = '';
let cleanup = async () => {};
let model = '';
let embedded: { samples: unknown; stats: { shards: number; edges: number } };
// Shards of 20 KB: well over a hundred, so every worker holds work when a fault strikes.
const args = (m = model) => ['analyze', m, '--full', '--json', '--shard-mb', '0.02'];

test.before(async () => {
  ({ dir, cleanup, model, embedded } = await faultModel('neuromfa-test-', args));
});

test.after.always(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGTERM').catch(() => undefined)));
  for (const s of servers) s.forceShutdown();
  await cleanup();
});

/** Shard results a run has journaled under OUT/shards so far. */
async function journaled(out: string): Promise<number> {
  return (await readdir(join(out, 'shards')).catch(() => [] as string[])).filter((f) => /^shard-\d+\.json$/.test(f)).length;
}


/** A real grpc-js worker on loopback that computes each shard and then spoils its reply. */
async function spoiledWorker(spoil: (reply: Uint8Array) => Uint8Array): Promise<string> {
  const real = new ShardService({ threads: 1, modelRoot: dir, maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES, backend: new InProcessBackend() });
  const service = Object.create(real) as ShardService;
  service.handleMessage = async (bytes, options) => spoil(await real.handleMessage(bytes, options));
  const server = await startGrpcServer(service, { address: '127.0.0.1:0', maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES });
  servers.push(server);
  return `127.0.0.1:${server.port}`;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test.serial('workers that answer garbage are dropped and their shards redone elsewhere: the same numbers', async (t) => {
  const good = await startWorkerProcess(['--threads', '1', '--grpc', '127.0.0.1:0', '--model-root', dir]);
  workers.push(good);
  // One answers bytes that are not MessagePack; one a well-formed reply with a sum row missing.
  const noise = await spoiledWorker(() => randomBytes(48));
  const shape = await spoiledWorker((bytes) => {
    const reply = decodeReply(bytes);
    if (reply.ok && reply.result.measure === 'mfa') reply.result.sums = reply.result.sums.subarray(1);
    return encodeReply(reply);
  });
  const run = await runCli([...args(), '--workers', [good.grpcAddress, noise, shape].map((a) => `grpc://${a}`).join(',')]);
  t.is(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  t.deepEqual(out.samples, embedded.samples);
  t.is(out.stats.edges, embedded.stats.edges);
  t.regex(run.stderr, new RegExp(`^neuromfa: worker grpc:grpc://${escape(noise)} left the run \\(\\d live\\): .*malformed reply for shard \\d+`, 'm'));
  t.regex(run.stderr, new RegExp(`^neuromfa: worker grpc:grpc://${escape(shape)} left the run \\(\\d live\\): malformed result for shard \\d+: sums has \\d+ values, expected \\d+$`, 'm'));
  t.regex(run.stderr, new RegExp(`^neuromfa: shard \\d+ failed on grpc:grpc://${escape(noise)} \\(attempt 1\\), retrying elsewhere`, 'm'));
});

const natsMissing = natsServerMissing();
(natsMissing ? test.skip : test.serial)(`the nats-server restarted mid-run: the run finishes with the same numbers${natsMissing ? ` (${natsMissing})` : ''}`, async (t) => {
  const nats = await NatsServer.start();
  try {
    const two: WorkerProcess[] = [];
    for (let i = 0; i < 2; i++) two.push(await startWorkerProcess(['--threads', '1', '--nats', nats.url, '--model-root', dir, '--metrics-port', '0']));
    workers.push(...two);
    const run = runCli([...args(), '--nats', nats.url]);
    await until('a shard done on NATS', async () => (await shardsDone(two[0])) + (await shardsDone(two[1])) >= 3);
    await nats.restart(500);
    const r = await run;
    t.is(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    t.deepEqual(out.samples, embedded.samples);
    t.is(out.stats.edges, embedded.stats.edges);
    const total = (await shardsDone(two[0])) + (await shardsDone(two[1]));
    t.true(total >= embedded.stats.shards, `workers finished ${total} shards of ${embedded.stats.shards}`);
  } finally {
    await nats.stop();
  }
});

test.serial('the coordinator SIGKILLed mid-run: --resume finishes it, recomputing none of the shards it had kept', async (t) => {
  const out = join(dir, 'killed-run');
  const first = await startWorkerProcess(['--threads', '1', '--grpc', '127.0.0.1:0', '--model-root', dir]);
  workers.push(first);
  const coordinator = spawn(process.execPath, [cliPath, ...args(), '--workers', `grpc://${first.grpcAddress}`, '--out', out], { cwd: repoRoot, stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((r) => coordinator.once('exit', (_code, signal) => r(signal)));
  const kept = () => journaled(out);
  await until('ten journaled shards', async () => (await kept()) >= 10);
  coordinator.kill('SIGKILL');
  t.is(await exited, 'SIGKILL');
  const done = await kept();
  t.true(done < embedded.stats.shards, `killed before the end (${done} of ${embedded.stats.shards})`);
  // A fresh worker, so its shard count is exactly what the resumed run computed.
  const second = await startWorkerProcess(['--threads', '1', '--grpc', '127.0.0.1:0', '--model-root', dir, '--metrics-port', '0']);
  workers.push(second);
  const resumed = await runCli([...args(), '--workers', `grpc://${second.grpcAddress}`, '--resume', out]);
  t.is(resumed.code, 0, resumed.stderr);
  const r = JSON.parse(resumed.stdout);
  t.deepEqual(r.samples, embedded.samples);
  t.is(r.stats.shards, embedded.stats.shards);
  t.is(r.stats.resumedShards, done);
  t.is(await shardsDone(second), embedded.stats.shards - done);
  t.is(await kept(), embedded.stats.shards, 'the resumed run journaled the rest');
});

test.serial('every worker gone: after the deadline a one-line error says what is kept, and --resume finishes the run', async (t) => {
  const out = join(dir, 'orphaned-run');
  const only = await startWorkerProcess(['--threads', '1', '--grpc', '127.0.0.1:0', '--model-root', dir]);
  workers.push(only);
  const run = runCli([...args(), '--workers', `grpc://${only.grpcAddress}`, '--shard-deadline', '2', '--out', out]);
  await until('five journaled shards', async () => (await journaled(out)) >= 5);
  await only.kill();
  const r = await run;
  t.is(r.code, 5, r.stderr);
  const kept = await journaled(out);
  t.true(kept >= 5 && kept < embedded.stats.shards, `${kept} of ${embedded.stats.shards} kept`);
  t.regex(
    r.stderr,
    new RegExp(`^neuromfa: every worker is gone \\(all failed or were dropped\\) and none came back within 2 s; ${kept} of ${embedded.stats.shards} shards are done and kept: continue with --resume ${escape(out)}$`, 'm'),
  );
  t.is(r.stdout, '');
  const again = await startWorkerProcess(['--threads', '1', '--grpc', '127.0.0.1:0', '--model-root', dir]);
  workers.push(again);
  const resumed = await runCli([...args(), '--workers', `grpc://${again.grpcAddress}`, '--resume', out]);
  t.is(resumed.code, 0, resumed.stderr);
  t.deepEqual(JSON.parse(resumed.stdout).samples, embedded.samples);
  t.is(JSON.parse(resumed.stdout).stats.resumedShards, kept);
});
