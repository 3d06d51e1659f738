import anyTest, { type TestFn } from 'ava';
import { copyFile, mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { openModel } from '../coordinator/analysis/model-analysis.js';
import { matrixTasks } from '../worker/plan/shard-plan.js';
import { withInlineBytes } from '../coordinator/plan/ship-bytes.js';
import { MessageFormatError } from '../proto/errors.js';
import { InputError, TransportError } from '../proto/errors.js';
import type { MfaParams, ShardTask } from '../proto/shard.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { GrpcBackend } from '../worker/backends/grpc.js';
import { NatsBackend } from '../worker/backends/nats.js';
import { makeCerts, type TestCerts } from './helpers/certs.js';
import { NatsServer, natsServerMissing } from './helpers/nats-server.js';
import { runCli } from './helpers/run-cli.js';
import { conformanceDir, readJson } from './helpers/shared.js';
import { makeTmpDir } from './helpers/tmp.js';
import { metricTotal, startWorkerProcess, type WorkerProcess } from './helpers/worker-process.js';

/**
 * Real `neuromfa worker` processes: path confinement under --model-root, malformed and
 * oversized messages, TLS and mutual TLS with certificates made here, NATS authentication
 * and TLS, and SIGTERM draining the shards in flight before exit 0.
 */
interface Context {
  certs: TestCerts;
  tmp: { dir: string; cleanup: () => Promise<void> };
  root: string;
  /** Full-NIN shards of a model copied under the root, with absolute paths inside it. */
  tasks: ShardTask[];
  processes: WorkerProcess[];
  cleanups: Array<() => Promise<void>>;
}
const test = anyTest as TestFn<Context>;
const params: MfaParams = readJson(join(conformanceDir, 'cases', 'heterogeneous', 'expected.json')).params;
const model = join(conformanceDir, 'gptneox', 'neox-f16-trained');
const inProcess = new InProcessBackend();
const timeless = <T extends { seconds: number }>(r: T) => ({ ...r, seconds: 0 });

test.before(async (t) => {
  const tmp = await makeTmpDir('neuromfa-security-');
  const root = join(tmp.dir, 'models');
  await mkdir(join(root, 'neox'), { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) await copyFile(join(model, f), join(root, 'neox', f));
  // A real, valid model file outside the root, reachable through links inside it.
  await mkdir(join(tmp.dir, 'outside'));
  await copyFile(join(model, 'model.safetensors'), join(tmp.dir, 'outside', 'model.safetensors'));
  await symlink(join(tmp.dir, 'outside', 'model.safetensors'), join(root, 'escape.safetensors'));
  await symlink(join(tmp.dir, 'outside'), join(root, 'linkdir'));
  const { ckpt, layout } = await openModel(join(root, 'neox'), 32);
  const tasks = matrixTasks(layout.matrices, ckpt, params, 64 << 10);
  await ckpt.close();
  t.context = { certs: await makeCerts(), tmp, root, tasks, processes: [], cleanups: [] };
});

test.after.always(async (t) => {
  for (const p of t.context.processes ?? []) await p.kill();
  // Last made, first closed: a client before the server it talks to.
  for (const c of (t.context.cleanups ?? []).reverse()) await c();
  await t.context.certs?.cleanup();
  await t.context.tmp?.cleanup();
});

async function worker(t: { context: Context }, args: string[], env?: NodeJS.ProcessEnv): Promise<WorkerProcess> {
  const p = await startWorkerProcess(['--threads', '1', ...args], { env });
  t.context.processes.push(p);
  return p;
}

function withFile(task: ShardTask, file: string): ShardTask {
  if (task.input.kind !== 'matrix') throw new Error('matrix task expected');
  return { ...task, input: { ...task.input, parts: task.input.parts.map((p) => ({ ...p, file })) } } as ShardTask;
}

test('path escapes are refused with an InputError the coordinator gets back; the worker keeps serving', async (t) => {
  const w = await worker(t, ['--grpc', '127.0.0.1:0', '--model-root', t.context.root, '--metrics-port', '0']);
  const backend = new GrpcBackend(w.grpcAddress!, { deadlineMs: 10_000 });
  t.context.cleanups.push(() => backend.close());
  const task = t.context.tasks[0];
  const want = timeless(await inProcess.run(task));
  t.deepEqual(timeless(await backend.run(task)), want, 'absolute path inside the root');
  t.deepEqual(timeless(await backend.run(withFile(task, 'neox/model.safetensors'))), want, 'relative to the root');
  const escapes: Array<[string, RegExp]> = [
    ['../outside/model.safetensors', /paths with "\.\." are refused/],
    ['neox/../../outside/model.safetensors', /paths with "\.\." are refused/],
    [join(t.context.tmp.dir, 'outside', 'model.safetensors'), /outside this worker's --model-root/],
    ['/etc/passwd', /outside this worker's --model-root/],
    ['escape.safetensors', /a symbolic link out/],
    ['linkdir/model.safetensors', /a symbolic link out/],
    ['neox/missing.safetensors', /no such file under the --model-root/],
  ];
  for (const [file, message] of escapes) {
    const err = await t.throwsAsync(backend.run(withFile(task, file)), { instanceOf: InputError, message }, file);
    t.false(err!.retryable, `${file}: permanent, never retried elsewhere`);
  }
  t.deepEqual(timeless(await backend.run(task)), want, 'still serving');
  const metrics = await w.metrics();
  t.regex(metrics, new RegExp(`neuromfa_worker_errors_total\\{backend="threads",code="INPUT",transport="grpc"\\} ${escapes.length}`));
  t.regex(metrics, /neuromfa_worker_shards_total\{backend="threads",measure="mfa",outcome="ok",transport="grpc"\} 3/);
  t.regex(metrics, /neuromfa_worker_bytes_read_total\{backend="threads",transport="grpc"\} \d+/);
  t.is((await fetch(`http://127.0.0.1:${w.metricsPort}/healthz`)).status, 200);
});

test('malformed and oversized messages to a worker process are refused; it keeps serving', async (t) => {
  const w = await worker(t, ['--grpc', '127.0.0.1:0', '--max-message-mb', '0.25']);
  const generous = new GrpcBackend(w.grpcAddress!, { maxMessageBytes: 8 << 20 });
  t.context.cleanups.push(() => generous.close());
  const weights = new Float64Array(64 << 10).fill(0.01);
  const big: ShardTask = { id: 1, measure: 'mfa', params, input: { kind: 'groups', weights, stride: 1, offsets: Uint32Array.of(0, weights.length) } };
  await t.throwsAsync(generous.run(big), { instanceOf: InputError, message: /RESOURCE_EXHAUSTED|larger than max|plan smaller shards/ });
  // Inline bytes that do not match the blocks they claim to be: malformed, refused, permanent.
  const inline = await withInlineBytes(t.context.tasks[0]);
  if (inline.input.kind !== 'matrix') return t.fail();
  const wrong = { ...inline, input: { ...inline.input, inline: inline.input.inline!.map((b) => b.subarray(1)) } } as ShardTask;
  await t.throwsAsync(generous.run(wrong), { instanceOf: MessageFormatError, message: /inline block 0 has/ });
  // Well-formed, but absurd: 2^40 rows would be a block list bigger than memory. The wire
  // decoder enforces the CLI's limits (proto/limits.ts), so it never reaches the reader.
  const absurd = withFile(t.context.tasks[0], 'neox/model.safetensors');
  if (absurd.input.kind !== 'matrix') return t.fail();
  absurd.input.parts = absurd.input.parts.map((p) => ({ ...p, rows: 2 ** 40 }));
  await t.throwsAsync(generous.run(absurd), { instanceOf: MessageFormatError, message: 'input.parts[0].rows: expected an integer in [1, 2147483647], got 1099511627776' });
  t.deepEqual(timeless(await generous.run(inline)), timeless(await inProcess.run(t.context.tasks[0])), 'still serving');
});

test('TLS: a client trusting the CA is served; plaintext and a client trusting another CA are refused; no --model-root means inline only', async (t) => {
  const { certs } = t.context;
  const w = await worker(t, ['--grpc', '127.0.0.1:0', '--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile]);
  const good = await GrpcBackend.connect(w.grpcAddress!, { tls: { ca: certs.ca } });
  t.context.cleanups.push(() => good.close());
  const inline = await withInlineBytes(t.context.tasks[1]);
  t.deepEqual(timeless(await good.run(inline)), timeless(await inProcess.run(t.context.tasks[1])));
  await t.throwsAsync(good.run(t.context.tasks[1]), { instanceOf: InputError, message: /no --model-root and reads no files: ship the bytes inline/ });
  t.false((await good.describe()).readsFiles);
  for (const [what, backend] of [
    ['plaintext', new GrpcBackend(w.grpcAddress!, { deadlineMs: 5000 })],
    ['another CA', new GrpcBackend(w.grpcAddress!, { deadlineMs: 5000, tls: { ca: certs.otherCa } })],
  ] as const) {
    t.context.cleanups.push(() => backend.close());
    const err = await t.throwsAsync(backend.run(inline), { instanceOf: TransportError }, what);
    t.regex(err!.message, /UNAVAILABLE|DEADLINE_EXCEEDED/, what);
  }
});

test('mutual TLS: only a client certificate signed by the CA is served', async (t) => {
  const { certs } = t.context;
  const w = await worker(t, [
    '--grpc', '127.0.0.1:0', '--model-root', t.context.root,
    '--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile, '--tls-ca', certs.caFile, '--require-client-cert',
  ]);
  const task = t.context.tasks[2];
  const trusted = new GrpcBackend(w.grpcAddress!, { tls: { ca: certs.ca, cert: certs.client.cert, key: certs.client.key } });
  t.context.cleanups.push(() => trusted.close());
  t.deepEqual(timeless(await trusted.run(task)), timeless(await inProcess.run(task)));
  for (const [what, tls] of [
    ['no client certificate', { ca: certs.ca }],
    ['a certificate from another CA', { ca: certs.ca, cert: certs.stranger.cert, key: certs.stranger.key }],
  ] as const) {
    const backend = new GrpcBackend(w.grpcAddress!, { deadlineMs: 5000, tls });
    t.context.cleanups.push(() => backend.close());
    await t.throwsAsync(backend.run(task), { instanceOf: TransportError }, what);
  }
  t.deepEqual(timeless(await trusted.run(task)), timeless(await inProcess.run(task)), 'still serving');
});

/** An edge-list shard that takes a while (~0.2 s): 1M edges over 1000 nodes, radii to 3 decimals. */
function slowTask(id: number): ShardTask {
  const edges = 1_000_000;
  const weights = Float64Array.from({ length: edges }, (_, k) => 1 / (1.2 + ((k * 7.31 + id) % 140)));
  const offsets = Uint32Array.from({ length: 1001 }, (_, i) => i * 1000);
  return { id, measure: 'mfa', params: { ...params, decimals: 3 }, input: { kind: 'groups', weights, stride: 1, offsets } };
}

async function inFlight(w: WorkerProcess): Promise<number> {
  return metricTotal(await w.metrics(), 'neuromfa_worker_shards_in_flight');
}

test('SIGTERM over gRPC: no new calls, every shard in flight answered, exit 0', async (t) => {
  const w = await worker(t, ['--grpc', '127.0.0.1:0', '--metrics-port', '0']);
  const backend = await GrpcBackend.connect(w.grpcAddress!, { concurrency: 6 });
  t.context.cleanups.push(() => backend.close());
  const tasks = Array.from({ length: 6 }, (_, i) => slowTask(i));
  const running = tasks.map((task) => backend.run(task));
  const since = Date.now();
  // All six uploaded (8 MB each) before the signal: a call still uploading at SIGTERM is
  // cancelled (handed back for a retry elsewhere), which is not what this test is about.
  while ((await inFlight(w)) < tasks.length && Date.now() - since < 60_000) await new Promise((r) => setTimeout(r, 10));
  t.is(await inFlight(w), tasks.length, 'every shard in flight before SIGTERM');
  const exited = w.stop('SIGTERM');
  const results = await Promise.all(running);
  t.deepEqual(results.map(timeless), (await Promise.all(tasks.map((task) => inProcess.run(task)))).map(timeless));
  t.deepEqual(await exited, { code: 0, signal: null });
  const stopped = w.logs.find((l) => l.msg === 'stopped');
  t.is(stopped?.shards, tasks.length);
  await t.throwsAsync(backend.run(tasks[0]), { instanceOf: TransportError });
});

test('worker flags are checked before anything starts', async (t) => {
  const { certs } = t.context;
  const cases: Array<[string[], number, RegExp]> = [
    [[], 2, /worker needs --grpc HOST:PORT and\/or --nats URL/],
    [['--grpc', 'localhost'], 2, /--grpc expects HOST:PORT/],
    [['--grpc', '127.0.0.1:0', '--tls-cert', certs.server.certFile], 2, /--tls-cert and --tls-key go together/],
    [['--grpc', '127.0.0.1:0', '--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile, '--require-client-cert'], 2, /--require-client-cert needs --tls-ca/],
    [['--nats', 'nats://127.0.0.1:1', '--tls-cert', 'x'], 2, /--tls-cert configures gRPC TLS: it needs --grpc/],
    [['--grpc', '127.0.0.1:0', '--nats-user', 'u'], 2, /--nats-user configures NATS: it needs --nats/],
    [['--nats', 'nats://127.0.0.1:1', '--nats-token', 't', '--nats-user', 'u', '--nats-pass', 'p'], 2, /--nats-token excludes/],
    [['--nats', 'nats://127.0.0.1:1', '--subject', 'a.*'], 2, /--subject must be a NATS subject without wildcards/],
    [['--grpc', '127.0.0.1:0', '--max-message-mb', '0'], 2, /--max-message-mb must be in/],
    [['--grpc', '127.0.0.1:0', '--tls-cert', '/nonexistent.pem', '--tls-key', '/nonexistent.key'], 3, /--tls-cert \/nonexistent\.pem: no such file/],
    [['--grpc', '127.0.0.1:0', '--model-root', '/nonexistent-root'], 3, /--model-root \/nonexistent-root: no such directory/],
  ];
  for (const [args, code, message] of cases) {
    const r = await runCli(['worker', ...args], { timeoutMs: 20_000 });
    t.is(r.code, code, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
});

const missing = natsServerMissing();
const natsTest = missing ? test.skip : test;
if (missing) test.skip(missing, () => {});

// Serial, so it runs alone in this process (ava runs serial tests first): under the concurrent
// tests' in-process kernels the event loop stalled for seconds while the ~34 MB reply below was
// pushed to it, nats-server cut it off as a slow consumer, and the reply was lost with the worker
// already stopping (issue 10; the backend now sends shards again after a reconnect, but a worker
// on its way out takes none).
(missing ? test.skip : test.serial)('NATS with user/password over TLS: the right credentials are served, wrong ones refused; SIGTERM finishes the shard in flight', async (t) => {
  const { certs } = t.context;
  const server = await NatsServer.start({ auth: { user: 'mfa', pass: 's3cret' }, tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile } });
  t.context.cleanups.push(() => server.stop());
  const w = await worker(t, ['--nats', server.url, '--nats-user', 'mfa', '--nats-tls-ca', certs.caFile, '--model-root', t.context.root, '--metrics-port', '0'], { NEUROMFA_NATS_PASS: 's3cret' });
  // A long liveness window: on a loaded CI machine the 8 MB shard below can starve heartbeats.
  const backend = await NatsBackend.connect({ servers: server.url, user: 'mfa', pass: 's3cret', tls: { ca: certs.ca.toString() }, livenessMs: 60_000 });
  t.context.cleanups.push(() => backend.close());
  t.is(backend.concurrency, 1);
  const task = t.context.tasks[3];
  const want = timeless(await inProcess.run(task));
  t.deepEqual(timeless(await backend.run(task)), want);
  await t.throwsAsync(NatsBackend.connect({ servers: server.url, user: 'mfa', pass: 'wrong', tls: { ca: certs.ca.toString() } }), { instanceOf: TransportError, message: /cannot connect/ });
  await t.throwsAsync(NatsBackend.connect({ servers: server.url, user: 'mfa', pass: 's3cret' }), { instanceOf: TransportError, message: /cannot connect/ }, 'no trust in the CA');
  const bad = await runCli(['worker', '--nats', server.url, '--nats-user', 'mfa', '--nats-pass', 'wrong', '--nats-tls-ca', certs.caFile], { timeoutMs: 20_000 });
  t.is(bad.code, 5);
  t.regex(bad.stderr, /cannot connect .*Authorization/i);
  // An 8 MB shard, uploaded in chunks (1 MB max_payload), then a second or more of work (301 q
  // values; the reply is ~34 MB): long enough that polling the in-flight gauge cannot miss it.
  const base = slowTask(9);
  const slow: ShardTask = { ...base, params: { ...base.params, q: Array.from({ length: 301 }, (_, k) => (k - 150) / 50) } } as ShardTask;
  const running = backend.run(slow);
  const since = Date.now();
  // Generous: on a loaded 2-core CI machine the chunked upload can take seconds.
  while ((await inFlight(w)) < 1 && Date.now() - since < 60_000) await new Promise((r) => setTimeout(r, 5));
  t.true((await inFlight(w)) >= 1, 'the shard reached the worker before SIGTERM');
  const exited = w.stop('SIGTERM');
  t.deepEqual(timeless(await running), timeless(await inProcess.run(slow)));
  t.deepEqual(await exited, { code: 0, signal: null });
});

natsTest('NATS with a token', async (t) => {
  const server = await NatsServer.start({ auth: { token: 't0ken' } });
  t.context.cleanups.push(() => server.stop());
  await worker(t, ['--nats', server.url, '--subject', 'neuromfa.tokens', '--model-root', t.context.root], { NEUROMFA_NATS_TOKEN: 't0ken' });
  const backend = await NatsBackend.connect({ servers: server.url, subject: 'neuromfa.tokens', token: 't0ken' });
  t.context.cleanups.push(() => backend.close());
  const task = t.context.tasks[4];
  t.deepEqual(timeless(await backend.run(task)), timeless(await inProcess.run(task)));
  await t.throwsAsync(NatsBackend.connect({ servers: server.url, token: 'nope' }), { instanceOf: TransportError });
});
