import test from 'ava';
import { join } from 'node:path';
import { NatsServer, natsServerMissing } from './helpers/nats-server.js';
import { runCli } from './helpers/run-cli.js';
import { conformanceDir } from './helpers/shared.js';
import { shardsDone, startWorkerProcess, type WorkerProcess } from './helpers/worker-process.js';

/**
 * A JetStream run through the CLI on one host (the multi-host faults are in
 * cluster-reading.test.ts): the run id on stderr, `status` read from the server, the same
 * command again collecting every result (nothing recomputed), `collect` from another
 * directory, and the one-line errors of the run commands.
 */
const missing = natsServerMissing();
const series = join(conformanceDir, 'series', 'tiny-neox-f16');
const args = ['emergence', ...['step0', 'step8', 'step64'].map((s) => join(series, s)), '--samples', '0-2', '--shards', '2', '--json'];
let server: NatsServer | undefined;
const workers: WorkerProcess[] = [];

if (!missing) {
  test.before(async () => {
    server = await NatsServer.start({ jetstream: true });
    for (let i = 0; i < 2; i++) workers.push(await startWorkerProcess(['--threads', '1', '--nats', server.url, '--model-root', conformanceDir, '--metrics-port', '0']));
  });
  test.after.always(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGTERM').catch(() => undefined)));
    await server?.stop();
  });
}
const serial = missing ? test.skip : test.serial;
const done = async () => (await shardsDone(workers[0])) + (await shardsDone(workers[1]));

serial(`a JetStream run: the embedded numbers, its id on stderr, status from the server; the same command again and collect compute nothing${missing ? ` (${missing})` : ''}`, async (t) => {
  const embedded = await runCli([...args, '--threads', '1']);
  t.is(embedded.code, 0, embedded.stderr);
  const want = JSON.parse(embedded.stdout).checkpoints;
  const queued = [...args, '--nats', server!.url, '--model-root', conformanceDir];
  const first = await runCli(queued);
  t.is(first.code, 0, first.stderr);
  t.deepEqual(JSON.parse(first.stdout).checkpoints, want);
  const id = /^neuromfa: run ([0-9a-f]{16}) on JetStream \(2 workers now\): `neuromfa status \1` shows its progress, `neuromfa collect \1` finishes it if this process dies$/m.exec(first.stderr)?.[1];
  t.truthy(id, first.stderr);
  const computed = await done();
  // Two workers, three checkpoints: one shard each, samples together.
  t.is(computed, 3);
  const status = await runCli(['status', id!, '--nats', server!.url, '--json']);
  t.is(status.code, 0, status.stderr);
  t.like(JSON.parse(status.stdout), { run: id, command: queued, total: 3, done: 3, failed: 0, pending: 0 });
  // The same command is the same run: every result collected.
  const again = await runCli(queued);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(JSON.parse(again.stdout).checkpoints, want);
  t.regex(again.stderr, new RegExp(`run ${id} on JetStream`));
  // collect from elsewhere replays it from the run's own directory.
  const collected = await runCli(['collect', id!, '--nats', server!.url], { cwd: '/' });
  t.is(collected.code, 0, collected.stderr);
  t.deepEqual(JSON.parse(collected.stdout).checkpoints, want);
  t.regex(collected.stderr, new RegExp(`^neuromfa: collecting run ${id}: emergence `, 'm'));
  t.is(await done(), computed, 'nothing computed again');
  // Another run id is another run: local files are scoped to it, so its shards are computed.
  const fresh = await runCli([...queued, '--run-id', 'fresh-run']);
  t.is(fresh.code, 0, fresh.stderr);
  t.deepEqual(JSON.parse(fresh.stdout).checkpoints, want);
  t.is(await done(), computed + 3);
});

serial(`the run commands' errors: one line and the exit code${missing ? ` (${missing})` : ''}`, async (t) => {
  const cases: Array<[string[], number, RegExp]> = [
    [['status', 'no-such-run', '--nats', server!.url], 2, /^neuromfa: run no-such-run: no such run on NATS \S+ \(bucket neuromfa-runs\)$/],
    [['collect', 'no-such-run', '--nats', server!.url], 2, /^neuromfa: run no-such-run: no such run on NATS/],
    [['status', 'a/b', '--nats', server!.url], 2, /^neuromfa: run id "a\/b": expected 1 to 64 letters, digits, "-" or "_"$/],
    [['status', 'x'], 2, /required option '--nats <url>' not specified/],
    [[...args, '--nats', server!.url, '--run-id', 'a b'], 2, /^neuromfa: run id "a b": expected 1 to 64 letters/],
    [[...args, '--nats', server!.url, '--ack-wait', '0'], 2, /^neuromfa: --ack-wait /],
    [[...args, '--model-root', conformanceDir], 2, /^neuromfa: --model-root names the workers' model directory: it needs --workers or --nats$/],
  ];
  for (const [argv, code, message] of cases) {
    const r = await runCli(argv);
    t.is(r.code, code, `${argv.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr.trim().split('\n').at(-1)!, message, argv.join(' '));
  }
});
