import anyTest, { type TestFn } from 'ava';
import { ChannelCredentials, Client, connectivityState, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { decodeReply } from '../proto/codec.js';
import { MessageFormatError } from '../proto/errors.js';
import { InputError, TransportError } from '../proto/errors.js';
import { workerService } from '../proto/grpc-service.js';
import type { ShardTask } from '../proto/shard.js';
import { GrpcBackend } from '../worker/backends/grpc.js';
import { startWorker, type RunningWorker } from '../worker/start-worker.js';
import { defineShardConformance, workloadRoot } from './conformance/define-shard-conformance.js';
import { GatedBackend } from './helpers/gated-backend.js';

/**
 * Shards over real grpc-js servers on 127.0.0.1 (in this process; worker-security.test.ts
 * spawns worker processes): bit-identical to the in-process kernel, health, describe,
 * malformed and oversized messages, deadlines, round robin.
 */
const test = anyTest as TestFn<{ worker: RunningWorker; backend: GrpcBackend; cleanups: Array<() => Promise<void>> }>;

const LIMIT = 256 << 10;

test.before(async (t) => {
  const worker = await startWorker({ threads: 1, modelRoot: workloadRoot, maxMessageBytes: LIMIT, grpc: { address: '127.0.0.1:0' } });
  t.context = { worker, backend: await GrpcBackend.connect(`127.0.0.1:${worker.grpcPort}`, { maxMessageBytes: LIMIT }), cleanups: [] };
  shared = t.context.backend;
});

test.after.always(async (t) => {
  await t.context.backend?.close();
  // Last made, first closed: a client before the server it talks to.
  for (const c of (t.context.cleanups ?? []).reverse()) await c();
  await t.context.worker?.stop();
});

let shared: GrpcBackend;
defineShardConformance('grpc', () => shared);

function edgeTask(id: number, edges: number): ShardTask {
  const weights = Float64Array.from({ length: edges }, (_, k) => 1 / (1.2 + ((k * 7.31) % 140)));
  return { id, measure: 'mfa', params: { threshold: 150, decimals: 1, minNeighbors: 5, q: [-2, -1, 0, 1, 2] }, input: { kind: 'groups', weights, stride: 1, offsets: Uint32Array.of(0, edges >> 1, edges) } };
}

/** A unary call with hand-made bytes, below the codec: what a broken or hostile client sends. */
function rawCall(port: number, method: { path: string }, body: Buffer): Promise<{ err: ServiceError | null; value?: Buffer }> {
  const client = new Client(`127.0.0.1:${port}`, ChannelCredentials.createInsecure(), { 'grpc.max_send_message_length': 64 << 20 });
  return new Promise((resolve) =>
    client.makeUnaryRequest(method.path, (b: Buffer) => b, (b: Buffer) => b, body, new Metadata(), { deadline: Date.now() + 10_000 }, (err, value) => {
      client.close();
      resolve({ err, value });
    }),
  );
}

function health(port: number, name: string): Promise<string> {
  const client = new Client(`127.0.0.1:${port}`, ChannelCredentials.createInsecure());
  const m = healthService.Check;
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, { service: name }, new Metadata(), { deadline: Date.now() + 5000 }, (err, v) => {
      client.close();
      if (err) reject(err);
      else resolve((v as { status: string }).status);
    }),
  );
}

test('a ready worker reports SERVING; Describe tells threads, version and limits', async (t) => {
  const port = t.context.worker.grpcPort!;
  t.is(await health(port, ''), 'SERVING');
  t.is(await health(port, 'neuromfa.v1.Worker'), 'SERVING');
  const d = await t.context.backend.describe();
  t.like(d, { threads: 1, backend: 'f64', transports: ['grpc'], readsFiles: true, maxMessageBytes: LIMIT });
  t.regex(d.version, /^\d+\.\d+\.\d+/);
  t.is(t.context.backend.concurrency, 1, 'connect() sized the window from Describe');
});

test('before its pool is ready a worker reports NOT_SERVING, and holds shards until it is', async (t) => {
  const gated = new GatedBackend();
  const { ShardService } = await import('../worker/serve.js');
  const { startGrpcServer } = await import('../worker/transport/grpc-server.js');
  const service = new ShardService({ threads: 1, maxMessageBytes: LIMIT, backend: gated });
  const server = await startGrpcServer(service, { address: '127.0.0.1:0', maxMessageBytes: LIMIT });
  t.context.cleanups.push(async () => {
    server.forceShutdown();
    await service.close();
  });
  await gated.reached(1);
  t.is(await health(server.port, ''), 'NOT_SERVING');
  const backend = new GrpcBackend(`127.0.0.1:${server.port}`);
  const early = backend.run(edgeTask(1, 100));
  gated.open();
  await service.whenReady();
  t.is((await early).id, 1);
  t.is(await health(server.port, ''), 'SERVING');
  await backend.close();
});

test('malformed messages get an error reply (or status) and the worker keeps serving', async (t) => {
  const port = t.context.worker.grpcPort!;
  // A valid ShardRequest whose task bytes are garbage: a typed error in the reply.
  const garbage = Buffer.concat([Buffer.of(0x0a, 5), Buffer.from('hello')]);
  const { err, value } = await rawCall(port, workerService.ComputeShard, garbage);
  t.is(err, null);
  const reply = decodeReply(workerService.ComputeShard.responseDeserialize(value!).reply);
  t.false(reply.ok);
  if (!reply.ok) t.like(reply.error, { name: 'MessageFormatError', code: 'MESSAGE_FORMAT', retryable: false });
  // Not even protobuf: grpc-js refuses it with a status.
  const notProto = await rawCall(port, workerService.ComputeShard, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
  t.truthy(notProto.err);
  t.is((await t.context.backend.run(edgeTask(5, 200))).id, 5);
});

test('an oversized message is refused with RESOURCE_EXHAUSTED → a permanent InputError; the worker keeps serving', async (t) => {
  const big = edgeTask(6, 64 << 10); // 512 KB of weights, over the worker's 256 KB
  const generous = new GrpcBackend(`127.0.0.1:${t.context.worker.grpcPort}`, { maxMessageBytes: 8 << 20 });
  t.context.cleanups.push(() => generous.close());
  const err = await t.throwsAsync(generous.run(big), { instanceOf: InputError, message: /plan smaller shards/ });
  t.false(err!.retryable);
  // The client's own limit stops it before sending.
  await t.throwsAsync(t.context.backend.run(big), { instanceOf: InputError, message: /over the 0\.3 MB gRPC message limit/ });
  t.is((await generous.run(edgeTask(7, 100))).id, 7);
});

test('a deadline or an abort ends the call with a retryable TransportError; an unreachable worker too', async (t) => {
  const gated = new GatedBackend();
  gated.open();
  const worker = await startWorker({ threads: 1, maxMessageBytes: LIMIT, grpc: { address: '127.0.0.1:0' }, backend: gated });
  gated.shut();
  t.context.cleanups.push(async () => {
    gated.open();
    await worker.stop();
  });
  const hurried = new GrpcBackend(`127.0.0.1:${worker.grpcPort}`, { deadlineMs: 300 });
  t.context.cleanups.push(() => hurried.close());
  const late = await t.throwsAsync(hurried.run(edgeTask(8, 100)), { instanceOf: TransportError, message: /DEADLINE_EXCEEDED/ });
  t.true(late!.retryable);
  const abort = new AbortController();
  const running = hurried.run(edgeTask(9, 100), { signal: abort.signal });
  setTimeout(() => abort.abort(new Error('the coordinator gave up')), 50);
  await t.throwsAsync(running, { instanceOf: TransportError, message: /abandoned \(the coordinator gave up\)/ });
  const nowhere = new GrpcBackend('127.0.0.1:1', { deadlineMs: 2000 });
  t.context.cleanups.push(() => nowhere.close());
  await t.throwsAsync(nowhere.run(edgeTask(10, 100)), { instanceOf: TransportError });
});

test('round robin over several addresses (the dns:/// policy) spreads shards over every worker', async (t) => {
  const workers = await Promise.all([0, 1].map(() => startWorker({ threads: 1, maxMessageBytes: LIMIT, grpc: { address: '127.0.0.1:0' } })));
  t.context.cleanups.push(async () => void (await Promise.all(workers.map((w) => w.stop()))));
  // ipv4:a,b is what dns:/// resolves a headless Service to: one channel, many addresses.
  const target = `ipv4:${workers.map((w) => `127.0.0.1:${w.grpcPort}`).join(',')}`;
  const backend = await GrpcBackend.connect(target, { concurrency: 2 });
  t.context.cleanups.push(() => backend.close());
  // The channel is ready with its first address; let round robin connect the other one.
  await new Promise((r) => setTimeout(r, 300));
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => backend.run(edgeTask(100 + i, 300))));
  t.deepEqual(results.map((r) => r.id), Array.from({ length: 8 }, (_, i) => 100 + i));
  const counts = workers.map((w) => w.service.metrics.value('neuromfa_worker_shards_total', { backend: 'threads', transport: 'grpc', measure: 'mfa', outcome: 'ok' }));
  t.true(counts.every((c) => c >= 2), `shards per worker: ${counts}`);
  // dns:/// with an IP literal goes through the DNS resolver.
  const dns = await GrpcBackend.connect(`dns:///127.0.0.1:${workers[0].grpcPort}`);
  t.context.cleanups.push(() => dns.close());
  t.is((await dns.run(edgeTask(200, 50))).id, 200);
});

test('a task error is typed: a missing file under the model root is an InputError, not retried', async (t) => {
  const task: ShardTask = {
    id: 11,
    measure: 'mfa',
    params: { threshold: 150, decimals: 0, minNeighbors: 10, q: [0, 1] },
    input: { kind: 'matrix', inputs: 4, parts: [{ tensor: 'w', file: 'gptneox/no-such/model.safetensors', dataStart: 0, dtype: 'F32', rows: 2, transposed: false }], colStart: 0, colEnd: 4 },
  };
  const err = await t.throwsAsync(t.context.backend.run(task), { instanceOf: InputError, message: /no such file under the --model-root/ });
  t.false(err!.retryable);
  t.false(err instanceof MessageFormatError);
});

test('the worker takes a keepalive ping every 100 ms without calls: no GOAWAY too_many_pings, the connection stays up', async (t) => {
  // gRPC's A8 lets servers refuse pings more often than every 5 min; the coordinator pings
  // every 5 s (KEEPALIVE_TIME_MS), so the worker must accept far more than that.
  const client = new Client(`127.0.0.1:${t.context.worker.grpcPort}`, ChannelCredentials.createInsecure(), {
    'grpc.keepalive_time_ms': 100,
    // Long: a loaded machine may be slow to ack one ping; only a GOAWAY may end the connection.
    'grpc.keepalive_timeout_ms': 20_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  t.context.cleanups.push(async () => client.close());
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())));
  const channel = client.getChannel();
  const left = await new Promise<boolean>((resolve) => channel.watchConnectivityState(connectivityState.READY, Date.now() + 1500, (err) => resolve(!err)));
  t.false(left, `the channel left READY for ${connectivityState[channel.getConnectivityState(false)]}`);
});
