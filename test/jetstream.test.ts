import anyTest, { type TestFn } from 'ava';
import { headers, nanos, type NatsConnection } from 'nats';
import { decodeReply, encodeReply, encodeTask } from '../proto/codec.js';
import { InputError, MessageFormatError, TransportError, UsageError } from '../proto/errors.js';
import { DURABLE, ensureQueue, getLarge, isNoJetStream, isSplitHead, JS_HEADERS, jobsSubject, putLarge, shardKey, type Queue } from '../proto/jetstream.js';
import type { MfaParams, ShardTask } from '../proto/shard.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { JetStreamBackend, type JetStreamEvent } from '../worker/backends/jetstream.js';
import type { ShardBackend } from '../worker/backends/shard-backend.js';
import { executeShard } from '../worker/execute-shard.js';
import { ShardService } from '../worker/serve.js';
import { natsConnect } from '../worker/transport/nats-connect.js';
import { startJetStreamWorker } from '../worker/transport/jetstream-worker.js';
import { GatedBackend } from './helpers/gated-backend.js';
import { NatsServer, natsServerMissing } from './helpers/nats-server.js';
import { until } from './helpers/until.js';

/**
 * The JetStream work queue against a real nats-server with JetStream (file storage, as
 * deployed), a fresh server per test so no bucket is shared: results bit-identical to the
 * in-process kernel, collected instead of recomputed by a restarted coordinator, deduplicated,
 * redelivered after a worker dies, carried across a nats-server restart, split over a small
 * max_payload; typed errors, run status, and a server without JetStream.
 */
const test = anyTest as TestFn<{ cleanups: Array<() => Promise<void>> }>;
const missing = natsServerMissing();
// Serial: servers restart and workers die mid-shard; on a 2-core machine one at a time.
const only = missing ? test.skip : test.serial;
if (missing) test.skip(missing, () => {});

const LIMIT = 4 << 20;
const PARAMS: MfaParams = { threshold: 150, decimals: 1, minNeighbors: 5, q: [-2, -1, 0, 1, 2] };

test.beforeEach((t) => {
  t.context = { cleanups: [] };
});
test.afterEach.always(async (t) => {
  // Last made, first closed: clients before the server they talk to.
  for (const c of t.context.cleanups.reverse()) await c();
});

type T = { context: { cleanups: Array<() => Promise<void>> } };

/** An mfa edge-list shard; `salt` changes its weights (and so its key). */
function edgeTask(id: number, edges: number, salt = 0, params: MfaParams = PARAMS): ShardTask {
  const weights = Float64Array.from({ length: edges }, (_, k) => 1 / (1.2 + ((k * 7.31 + salt * 0.37) % 140)));
  return { id, measure: 'mfa', params, input: { kind: 'groups', weights, stride: 1, offsets: Uint32Array.of(0, edges >> 1, edges) } };
}

const bits = (r: object) => ({ ...r, seconds: 0 });

async function server(t: T, o: { maxPayload?: number; jetstream?: boolean } = {}): Promise<NatsServer> {
  const s = await NatsServer.start({ jetstream: true, ...o });
  t.context.cleanups.push(() => s.stop());
  return s;
}

async function client(t: T, s: NatsServer): Promise<NatsConnection> {
  const nc = await natsConnect({ servers: s.url });
  t.context.cleanups.push(async () => void (nc.isClosed() || (await nc.close())));
  return nc;
}

/** The queue with a 2 s ack_wait, created before any worker, so redelivery is quick. */
async function queue(t: T, s: NatsServer, ackWaitMs = 2000): Promise<Queue> {
  return ensureQueue(await client(t, s), { subject: 'neuromfa.shards', ackWaitMs });
}

interface TestWorker {
  service: ShardService;
  nc: NatsConnection;
  shards(): number;
  stop(): Promise<void>;
}

/** A worker built from its parts: a ShardService over `backend` on its own connection. */
async function worker(t: T, s: NatsServer, backend: ShardBackend = new InProcessBackend()): Promise<TestWorker> {
  const service = new ShardService({ threads: 1, maxMessageBytes: LIMIT, backend });
  await service.whenReady();
  const nc = await natsConnect({ servers: s.url });
  const transport = await startJetStreamWorker(service, nc, { maxMessageBytes: LIMIT, heartbeatMs: 300 });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (backend instanceof GatedBackend) backend.open();
    await transport.shutdown();
    if (!nc.isClosed()) await nc.drain();
    await service.close();
  };
  t.context.cleanups.push(stop);
  return { service, nc, stop, shards: () => service.metrics.total('neuromfa_worker_shards_total') };
}

async function coordinator(t: T, s: NatsServer, runId: string, extra: Partial<Parameters<typeof JetStreamBackend.connect>[0]> = {}): Promise<JetStreamBackend> {
  const b = await JetStreamBackend.connect({ servers: s.url, runId, command: 'mfa', argv: ['mfa', 'edges.npy'], ...extra });
  t.context.cleanups.push(() => b.close());
  return b;
}

/** A gated backend, open for the service's self-test: shut it before the shards. */
async function gate(): Promise<GatedBackend> {
  const gated = new GatedBackend();
  gated.open();
  return gated;
}

only('keys are content addresses: the id is ignored, the scope prefixes, a bad scope is a UsageError', (t) => {
  const a = shardKey(edgeTask(1, 100));
  t.regex(a, /^[0-9a-f]{64}$/);
  t.is(shardKey(edgeTask(7, 100)), a);
  t.not(shardKey(edgeTask(1, 100, 1)), a);
  t.is(shardKey(edgeTask(1, 100), 'run-1'), `run-1.${a}`);
  t.throws(() => shardKey(edgeTask(1, 100), 'a b'), { instanceOf: UsageError, message: /run id "a b"/ });
});

only('split KV values: parts then head, reassembled exactly; a missing part is a MessageFormatError', async (t) => {
  const q = await queue(t, await server(t));
  const bytes = Uint8Array.from({ length: 10_000 }, (_, k) => (k * 31) & 255);
  await putLarge(q.cache, 'big', bytes, 1024);
  t.true(isSplitHead((await q.cache.get('big'))!.value));
  t.deepEqual(await getLarge(q.cache, 'big'), bytes);
  await putLarge(q.cache, 'small', bytes.subarray(0, 100), 1024);
  t.deepEqual(await getLarge(q.cache, 'small'), bytes.subarray(0, 100));
  t.is(await getLarge(q.cache, 'none'), null);
  await t.throwsAsync(getLarge(q.cache, 'big', 5000), { instanceOf: MessageFormatError, message: /10000 bytes is over the 5000-byte limit/ });
  const keys: string[] = [];
  for await (const k of await q.cache.keys('big.>')) keys.push(k);
  t.is(keys.length, 10);
  await q.cache.purge(keys.sort()[3]);
  await t.throwsAsync(getLarge(q.cache, 'big'), { instanceOf: MessageFormatError, message: /part \d of 10 is missing/ });
  await q.cache.put('damaged', new TextEncoder().encode('\0neuromfa-parts\0{"parts":'));
  await t.throwsAsync(getLarge(q.cache, 'damaged'), { instanceOf: MessageFormatError, message: 'neuromfa-cache damaged: malformed head entry' });
});

only('ensureQueue is idempotent, and an ack policy given to it updates the existing consumer', async (t) => {
  const s = await server(t);
  const q = await queue(t, s, 2000);
  const again = await ensureQueue(await client(t, s), { subject: 'neuromfa.shards' });
  const info = () => q.jsm.consumers.info(q.stream, DURABLE);
  t.like((await info()).config, { ack_wait: nanos(2000), max_deliver: 5, filter_subject: 'neuromfa.shards.jobs' });
  t.is(again.stream, 'NEUROMFA_SHARDS');
  await ensureQueue(await client(t, s), { subject: 'neuromfa.shards', ackWaitMs: 4000, maxDeliver: 7, backoffMs: [1000, 3000] });
  t.like((await info()).config, { ack_wait: nanos(1000), max_deliver: 7, backoff: [nanos(1000), nanos(3000)] });
  t.like((await q.jsm.streams.info(q.stream)).config, { subjects: ['neuromfa.shards.jobs'], retention: 'workqueue', storage: 'file', duplicate_window: nanos(3_600_000) });
  t.is((await ensureQueue(await client(t, s), { subject: 'team.b' })).stream, 'NEUROMFA_SHARDS_team_b');
});

only('results equal the in-process kernel bit for bit over two workers, and both workers take shards', async (t) => {
  const s = await server(t);
  await queue(t, s);
  const workers = [await worker(t, s), await worker(t, s)];
  const backend = await coordinator(t, s, 'two-workers');
  const tasks = Array.from({ length: 12 }, (_, i) => edgeTask(i, 20_000, i));
  const got = await Promise.all(tasks.map((task) => backend.run(task)));
  const want = await Promise.all(tasks.map((task) => executeShard(task)));
  t.deepEqual(got.map(bits), want.map(bits));
  const counts = workers.map((w) => w.shards());
  t.is(counts[0] + counts[1], 12);
  t.true(counts.every((c) => c >= 1), `shards per worker: ${counts}`);
  t.like(backend, { published: 12, computed: 12, collected: 0 });
});

only('a restarted coordinator collects every result from the bucket: no shard computed again', async (t) => {
  const s = await server(t);
  await queue(t, s);
  const w = await worker(t, s);
  const tasks = Array.from({ length: 6 }, (_, i) => edgeTask(i, 5000, i));
  const first = await coordinator(t, s, 'restarted');
  const want = await Promise.all(tasks.map((task) => first.run(task)));
  await first.close();
  t.is(w.shards(), 6);
  const events: JetStreamEvent[] = [];
  const second = await coordinator(t, s, 'restarted', { onEvent: (e) => events.push(e) });
  const got = await Promise.all(tasks.map((task) => second.run(task)));
  t.deepEqual(got.map(bits), want.map(bits));
  t.like(second, { published: 0, computed: 0, collected: 6 });
  t.is(w.shards(), 6, 'no shard ran on the worker the second time');
  t.deepEqual(events.map((e) => e.type), Array(6).fill('collected'));
});

only('the same task queued twice (two coordinators, same key) is computed once', async (t) => {
  const s = await server(t);
  await queue(t, s);
  const gated = await gate();
  const w = await worker(t, s, gated);
  gated.shut();
  const published: string[] = [];
  const a = await coordinator(t, s, 'run-a', { onEvent: (e) => e.type === 'published' && published.push('a') });
  const b = await coordinator(t, s, 'run-b', { onEvent: (e) => e.type === 'published' && published.push('b') });
  const ra = a.run(edgeTask(3, 4000, 9));
  const rb = b.run(edgeTask(4, 4000, 9));
  // Both offered to the server before the one delivery may finish.
  await until('both publishes', async () => published.length === 2);
  await gated.reached(2);
  gated.open();
  const [x, y] = await Promise.all([ra, rb]);
  t.is(x.id, 3);
  t.is(y.id, 4);
  t.deepEqual(bits({ ...x, id: 0 }), bits({ ...y, id: 0 }));
  t.is(a.published + b.published, 1, 'the server dropped the second copy (same msgID)');
  t.is(w.shards(), 1);
});

only('a worker killed mid-shard: the server redelivers it to another after ack_wait', async (t) => {
  const s = await server(t);
  await queue(t, s, 2000);
  const gated = await gate();
  const doomed = await worker(t, s, gated);
  gated.shut();
  const backend = await coordinator(t, s, 'killed');
  const task = edgeTask(5, 3000, 5);
  const result = backend.run(task);
  await gated.reached(2);
  // As SIGKILL leaves it: the connection gone, no ack, no shutdown.
  await doomed.nc.close();
  const rescuer = await worker(t, s);
  t.deepEqual(bits(await result), bits(await executeShard(task)));
  t.is(rescuer.shards(), 1);
  t.is(backend.computed, 1);
});

only('a nats-server restart mid-run: the run finishes with the right numbers', async (t) => {
  const s = await server(t);
  await queue(t, s, 30_000);
  const gates = [await gate(), await gate()];
  const workers = [await worker(t, s, gates[0]), await worker(t, s, gates[1])];
  for (const g of gates) g.shut();
  const backend = await coordinator(t, s, 'restart');
  const tasks = Array.from({ length: 8 }, (_, i) => edgeTask(i, 5000, 20 + i));
  const all = Promise.all(tasks.map((task) => backend.run(task)));
  // Each worker holds a shard, the other six are queued in the stream, when the server goes down.
  await Promise.all(gates.map((g) => g.reached(2)));
  await until('all published', async () => backend.published === 8);
  await s.restart(300);
  for (const g of gates) g.open();
  const got = await all;
  t.deepEqual(got.map(bits), (await Promise.all(tasks.map((task) => executeShard(task)))).map(bits));
  t.like(backend, { computed: 8, collected: 0 });
  t.true(workers[0].shards() + workers[1].shards() >= 8);
});

only('a large task goes through the payloads bucket and a large result through split KV (64 KiB max_payload)', async (t) => {
  const s = await server(t, { maxPayload: 64 << 10 });
  const q = await queue(t, s);
  const backend = await coordinator(t, s, 'large');
  const task = edgeTask(8, 20_000, 8, { ...PARAMS, q: Array.from({ length: 41 }, (_, k) => -10 + k / 2) });
  const want = await executeShard(task);
  t.true(encodeTask(task).length > 64 << 10);
  t.true(encodeReply({ ok: true, result: want }).length > 64 << 10);
  const key = shardKey(task);
  const running = backend.run(task);
  // No worker yet: the task waits in the payloads bucket, split, and the message only points at it.
  await until('payload stored', async () => (await q.payloads.get(key)) !== null);
  t.true(isSplitHead((await q.payloads.get(key))!.value));
  t.deepEqual(await getLarge(q.payloads, key), new Uint8Array(encodeTask(task)));
  await worker(t, s);
  t.deepEqual(bits(await running), bits(want));
  t.true(isSplitHead((await q.results.get(key))!.value), 'the result is split in the bucket');
  await until('payload deleted', async () => (await q.payloads.get(key))?.operation !== 'PUT');
});

only('a permanent error reaches the coordinator typed; a malformed task gets its refusal stored', async (t) => {
  const s = await server(t);
  const q = await queue(t, s);
  await worker(t, s);
  const backend = await coordinator(t, s, 'errors');
  const matrix: ShardTask = {
    id: 9,
    measure: 'mfa',
    params: PARAMS,
    input: { kind: 'matrix', inputs: 4, parts: [{ tensor: 'w', file: 'model.safetensors', dataStart: 0, dtype: 'F32', rows: 4, transposed: false }], colStart: 0, colEnd: 4 },
  };
  await t.throwsAsync(backend.run(matrix), { instanceOf: InputError, message: /names model\.safetensors, but this worker has no --model-root/ });
  const h = headers();
  h.set(JS_HEADERS.key, 'garbage');
  await q.js.publish(jobsSubject(), new TextEncoder().encode('not msgpack'), { headers: h });
  await until('refusal stored', async () => (await q.results.get('garbage')) !== null);
  const reply = decodeReply((await getLarge(q.results, 'garbage'))!);
  t.like(reply, { ok: false, error: { name: 'MessageFormatError', retryable: false } });
});

only('a retryable worker error is nak\'ed and retried by the server, then stored and thrown typed on the last delivery', async (t) => {
  const s = await server(t);
  await ensureQueue(await client(t, s), { subject: 'neuromfa.shards', maxDeliver: 2 });
  let calls = 0;
  // Passes the service's self-test (the first run), then fails every shard as a flaky disk would.
  const flaky: ShardBackend = { name: 'flaky', concurrency: 1, close: async () => {}, run: (task) => (++calls === 1 ? executeShard(task) : Promise.reject(new TransportError('disk hiccup'))) };
  await worker(t, s, flaky);
  const backend = await coordinator(t, s, 'flaky');
  const err = await t.throwsAsync(backend.run(edgeTask(11, 1000, 11)), { instanceOf: TransportError, message: 'disk hiccup' });
  t.true(err!.retryable);
  t.is(calls, 3, 'the self-test, then one run per delivery');
});

only('a shard its workers hang on until max_deliver is used up fails the run with that line, and leaves the queue', async (t) => {
  const s = await server(t);
  const q = await ensureQueue(await client(t, s), { subject: 'neuromfa.shards', ackWaitMs: 1000, maxDeliver: 1 });
  // A worker that takes the shard and never answers (hung).
  const hung = await gate();
  await worker(t, s, hung);
  hung.shut();
  const before = hung.started;
  // A 300 ms deadline: the worker stops extending the ack at once, so the delivery lapses after ack_wait.
  const backend = await coordinator(t, s, 'stuck', { deadlineMs: 300 });
  const result = backend.run(edgeTask(12, 1000, 12));
  result.catch(() => undefined);
  await hung.reached(before + 1);
  // The server finds the deliveries used up when a worker next asks for work.
  const free = await worker(t, s);
  const err = await t.throwsAsync(result, { instanceOf: TransportError, message: /was delivered 1 time and never answered .*run the same command again/ });
  t.true(err!.retryable);
  t.is(free.shards(), 0);
  await until('the stuck message is removed', async () => (await q.jsm.streams.info(q.stream)).state.messages === 0, 10_000);
});

only('a retryable failure stored by the workers (deliveries used up) is queued anew by the next run()', async (t) => {
  const s = await server(t);
  const q = await queue(t, s);
  const task = edgeTask(10, 3000, 10);
  const key = shardKey(task);
  const gaveUp = encodeReply({ ok: false, error: { name: 'TransportError', code: 'TRANSPORT', message: 'worker lost', retryable: true } });
  await putLarge(q.results, key, gaveUp, 1 << 20);
  const w = await worker(t, s);
  const backend = await coordinator(t, s, 'again');
  t.deepEqual(bits(await backend.run(task)), bits(await executeShard(task)));
  t.like(backend, { published: 1, computed: 1, collected: 0 });
  t.is(w.shards(), 1);
});

only('status(): total, done and pending of a half-done run, read without joining it', async (t) => {
  const s = await server(t);
  await queue(t, s);
  const gated = await gate();
  await worker(t, s, gated);
  const backend = await coordinator(t, s, 'half');
  await Promise.all([0, 1].map((i) => backend.run(edgeTask(i, 3000, 40 + i))));
  gated.shut();
  const rest = Promise.all([2, 3].map((i) => backend.run(edgeTask(i, 3000, 40 + i))));
  await gated.reached(4);
  const status = () => JetStreamBackend.status({ servers: s.url, runId: 'half' });
  // Known from the coordinator's start; its keys follow within 200 ms.
  t.like((await status()).manifest, { id: 'half', command: 'mfa', argv: ['mfa', 'edges.npy'] });
  // The manifest is saved at most every 200 ms.
  await until('manifest with 4 keys', async () => (await status()).total === 4);
  const half = await status();
  t.like(half, { total: 4, done: 2, failed: 0, pending: 2 });
  gated.open();
  await rest;
  await until('all acked', async () => (await status()).pending === 0);
  t.like(await status(), { total: 4, done: 4, failed: 0, pending: 0 });
  await t.throwsAsync(JetStreamBackend.status({ servers: s.url, runId: 'nope' }), { instanceOf: UsageError, message: /run nope: no such run/ });
});

only('a server without JetStream: isNoJetStream, with the fix in the message', async (t) => {
  const s = await server(t, { jetstream: false });
  const err = await t.throwsAsync(ensureQueue(await client(t, s), { subject: 'neuromfa.shards' }));
  t.true(isNoJetStream(err));
  t.regex(err!.message, /^NATS server 127\.0\.0\.1:\d+ has no JetStream: start it with -js/);
  const viaBackend = await t.throwsAsync(JetStreamBackend.connect({ servers: s.url, runId: 'x' }));
  t.true(isNoJetStream(viaBackend));
});
