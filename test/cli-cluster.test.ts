import test from 'ava';
import { join } from 'node:path';
import { runCli } from './helpers/run-cli.js';
import { conformanceDir } from './helpers/shared.js';
import { makeTmpDir } from './helpers/tmp.js';
import { shardsDone, startWorkerProcess, type WorkerProcess } from './helpers/worker-process.js';

const model = join(conformanceDir, 'gptneox', 'neox-f16-trained');
// Small shards so every worker gets many: 96 KB of weights each.
const common = ['analyze', model, '--full', '--json', '--shard-mb', '0.09'];
const workers: WorkerProcess[] = [];

test.after.always(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGTERM').catch(() => undefined)));
});

test.serial('analyze --full through two gRPC worker processes equals the embedded run, bit for bit; --ship-bytes too', async (t) => {
  for (const root of [conformanceDir, conformanceDir]) workers.push(await startWorkerProcess(['--threads', '1', '--grpc', '127.0.0.1:0', '--model-root', root]));
  const embedded = await runCli([...common, '--threads', '1']);
  t.is(embedded.code, 0, embedded.stderr);
  const list = workers.map((w) => `grpc://${w.grpcAddress}`).join(',');
  const remote = await runCli([...common, '--workers', list]);
  t.is(remote.code, 0, remote.stderr);
  const a = JSON.parse(embedded.stdout);
  const b = JSON.parse(remote.stdout);
  t.true(a.stats.shards > 4);
  t.deepEqual(b.samples, a.samples);
  t.is(b.stats.edges, a.stats.edges);
  const shipped = await runCli([...common, '--workers', list, '--ship-bytes']);
  t.is(shipped.code, 0, shipped.stderr);
  t.deepEqual(JSON.parse(shipped.stdout).samples, a.samples);
});

test.serial('emergence through gRPC workers equals the embedded curve: workers that read under --model-root, and bare workers sent the edges (--ship-bytes)', async (t) => {
  const series = join(conformanceDir, 'series', 'tiny-neox-f16');
  const args = ['emergence', ...['step0', 'step8', 'step64', 'step512'].map((s) => join(series, s)), '--samples', '0-2', '--shards', '2', '--json'];
  // The same shard layout (--shards) on both sides: then the numbers are equal to the bit.
  const embedded = await runCli([...args, '--threads', '1']);
  t.is(embedded.code, 0, embedded.stderr);
  const a = JSON.parse(embedded.stdout);
  t.is(a.checkpoints.length, 4);
  // Workers reading the checkpoints themselves: named relative to the shared model root.
  const reading = workers[0];
  const read = await runCli([...args, '--workers', `grpc://${reading.grpcAddress}`, '--model-root', conformanceDir]);
  t.is(read.code, 0, read.stderr);
  t.deepEqual(JSON.parse(read.stdout).checkpoints, a.checkpoints);
  // A bare worker reads nothing: it says so, and --ship-bytes sends it the edges instead.
  const bare = await startWorkerProcess(['--threads', '1', '--grpc', '127.0.0.1:0']);
  workers.push(bare);
  const refused = await runCli([...args, '--workers', `grpc://${bare.grpcAddress}`]);
  t.is(refused.code, 3, refused.stderr);
  t.regex(refused.stderr, /^neuromfa: a shard names \/.*tiny-neox-f16\/step0, but this worker has no --model-root and reads no files: give it --model-root, or run with --ship-bytes$/m);
  const shipped = await runCli([...args, '--workers', `grpc://${bare.grpcAddress}`, '--ship-bytes']);
  t.is(shipped.code, 0, shipped.stderr);
  t.deepEqual(JSON.parse(shipped.stdout).checkpoints, a.checkpoints);
  // Outside the coordinator's --model-root: refused before any work.
  const outside = await runCli([...args, '--workers', `grpc://${reading.grpcAddress}`, '--model-root', join(conformanceDir, 'gptneox')]);
  t.is(outside.code, 2, outside.stderr);
  t.regex(outside.stderr, /is outside --model-root .*gptneox: workers read models under the root they share with the coordinator/);
});

test.serial('--resume reuses every finished shard of a run and gives the same numbers', async (t) => {
  const { dir, cleanup } = await makeTmpDir();
  try {
    const out = join(dir, 'run');
    const first = await runCli([...common, '--threads', '1', '--out', out]);
    t.is(first.code, 0, first.stderr);
    const again = await runCli([...common, '--threads', '1', '--resume', out]);
    t.is(again.code, 0, again.stderr);
    const a = JSON.parse(first.stdout);
    const b = JSON.parse(again.stdout);
    t.is(a.stats.resumedShards, 0);
    t.is(b.stats.resumedShards, a.stats.shards);
    t.deepEqual(b.samples, a.samples);
    const other = await runCli(['analyze', model, '--full', '--json', '--shard-mb', '0.05', '--resume', out]);
    t.is(other.code, 4);
    t.regex(other.stderr, /--resume found a run of another model, input or parameters/);
    // A sampled run: its journal is keyed by the samples' weight digests and the cut.
    const sampled = ['analyze', model, '--samples', '0-2', '--shards', '2', '--json', '--threads', '1'];
    const outS = join(dir, 'sampled');
    const s1 = JSON.parse((await runCli([...sampled, '--out', outS])).stdout);
    const s2 = await runCli([...sampled, '--resume', outS]);
    t.is(s2.code, 0, s2.stderr);
    t.is(JSON.parse(s2.stdout).stats.resumedShards, s1.stats.shards);
    t.deepEqual(JSON.parse(s2.stdout).samples, s1.samples);
    const recut = await runCli(['analyze', model, '--samples', '0-2', '--shards', '3', '--json', '--threads', '1', '--resume', outS]);
    t.is(recut.code, 4, 'another cut is another run');
  } finally {
    await cleanup();
  }
});

test('coordinator TLS flags: a missing file names the flag; a client certificate needs its key', async (t) => {
  const missing = await runCli([...common, '--workers', 'grpc://127.0.0.1:1', '--tls-ca', '/nonexistent-ca.pem']);
  t.is(missing.code, 3);
  t.regex(missing.stderr, /^neuromfa: --tls-ca \/nonexistent-ca\.pem: no such file\n$/);
  const half = await runCli([...common, '--workers', 'grpc://127.0.0.1:1', '--tls-cert', '/nonexistent-cert.pem']);
  t.is(half.code, 2);
  t.regex(half.stderr, /^neuromfa: --tls-cert and --tls-key go together\n$/);
});

test('--ship-bytes without workers is a usage error', async (t) => {
  const r = await runCli([...common, '--ship-bytes']);
  t.is(r.code, 2);
  t.regex(r.stderr, /^neuromfa: --ship-bytes needs --workers or --nats\n$/);
});

test.serial('SIGKILL of one of three workers mid-run: the run finishes with the same numbers', async (t) => {
  const { dir, cleanup } = await makeTmpDir();
  const { writeSyntheticNeox } = await import('../coordinator/demo/synthetic-neox.js');
  const three: WorkerProcess[] = [];
  try {
    const ckpt = join(dir, 'model');
    await writeSyntheticNeox(ckpt, { hidden: 256, blocks: 4, vocab: 64, dtype: 'F16', progress: 0.5, seed: 3 });
    const args = ['analyze', ckpt, '--full', '--json', '--shard-mb', '0.02'];
    const embedded = await runCli([...args, '--threads', '1']);
    t.is(embedded.code, 0, embedded.stderr);
    for (let i = 0; i < 3; i++) three.push(await startWorkerProcess(['--threads', '1', '--grpc', '127.0.0.1:0', '--model-root', dir, '--metrics-port', '0']));
    workers.push(...three);
    const run = runCli([...args, '--workers', three.map((w) => `grpc://${w.grpcAddress}`).join(',')]);
    // Kill worker 1 once it has finished a shard: the run is under way and it holds work.
    const since = Date.now();
    while ((await shardsDone(three[1])) < 1 && Date.now() - since < 60_000) await new Promise((r) => setTimeout(r, 20));
    t.true((await shardsDone(three[1])) >= 1, 'worker 1 took shards before it was killed');
    await three[1].kill();
    const remote = await run;
    t.is(remote.code, 0, remote.stderr);
    const a = JSON.parse(embedded.stdout);
    const b = JSON.parse(remote.stdout);
    t.true(a.stats.shards > 100);
    t.deepEqual(b.samples, a.samples);
  } finally {
    await cleanup();
  }
});
