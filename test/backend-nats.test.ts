import anyTest, { type TestFn } from 'ava';
import { connect, createInbox, headers, type NatsConnection } from 'nats';
import { decodeReply, encodeTask } from '../proto/codec.js';
import { InputError, TransportError } from '../proto/errors.js';
import { HEADERS } from '../proto/nats-chunks.js';
import type { ShardResult, ShardTask } from '../proto/shard.js';
import { NatsBackend } from '../worker/backends/nats.js';
import { executeShard } from '../worker/execute-shard.js';
import { ShardService } from '../worker/serve.js';
import { startWorker, type RunningWorker } from '../worker/start-worker.js';
import { natsConnect } from '../worker/transport/nats-connect.js';
import { startNatsWorker } from '../worker/transport/nats-worker.js';
import { defineShardConformance, shardWorkloads, workloadRoot } from './conformance/define-shard-conformance.js';
import { GatedBackend } from './helpers/gated-backend.js';
import { NatsServer, natsServerMissing } from './helpers/nats-server.js';

/**
 * Shards through a real nats-server on 127.0.0.1 with a 16 KB max_payload, so the inline
 * workloads and the full-NIN replies travel chunked: bit-identical to the in-process kernel;
 * queue groups, malformed and oversized messages, a silent worker, a restarted server, auth.
 */
const test = anyTest as TestFn<{ server: NatsServer; worker: RunningWorker; backend: NatsBackend; cleanups: Array<() => Promise<void>> }>;

const MAX_PAYLOAD = 16 << 10;
const LIMIT = 4 << 20;
const missing = natsServerMissing();
let shared: NatsBackend;

const natsWorker = (server: NatsServer, extra: Partial<Parameters<typeof startWorker>[0]> = {}, subject?: string) =>
  startWorker({ threads: 1, modelRoot: workloadRoot, maxMessageBytes: LIMIT, nats: { servers: server.url, heartbeatMs: 200, subject }, ...extra });

if (missing) {
  test.skip(missing, () => {});
} else {
  test.before(async (t) => {
    const server = await NatsServer.start({ maxPayload: MAX_PAYLOAD });
    t.context = { server, cleanups: [] } as never;
    t.context.worker = await natsWorker(server);
    t.context.backend = shared = await NatsBackend.connect({ servers: server.url, livenessMs: 1500, maxMessageBytes: LIMIT });
  });

  test.after.always(async (t) => {
    await t.context.backend?.close();
    // Last made, first closed: a client before the server it talks to.
  for (const c of (t.context.cleanups ?? []).reverse()) await c();
    await t.context.worker?.stop();
    await t.context.server?.stop();
  });

  defineShardConformance('nats (16 KB max_payload: chunked both ways)', () => shared);
}

const only = missing ? test.skip : test;
// These two cut connections and restart the server: run alone (ava runs serial tests first).
const serialOnly = missing ? test.skip : test.serial;

function edgeTask(id: number, edges: number): ShardTask {
  const weights = Float64Array.from({ length: edges }, (_, k) => 1 / (1.2 + ((k * 7.31) % 140)));
  return { id, measure: 'mfa', params: { threshold: 150, decimals: 1, minNeighbors: 5, q: [-2, -1, 0, 1, 2] }, input: { kind: 'groups', weights, stride: 1, offsets: Uint32Array.of(0, edges >> 1, edges) } };
}

async function retryNoResponders<T>(f: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await f();
    } catch (err) {
      if (!/503/.test(String((err as Error).message)) || attempt > 200) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** A plain client, for messages the backend would never send. */
async function rawClient(t: { context: { server: NatsServer; cleanups: Array<() => Promise<void>> } }): Promise<NatsConnection> {
  const nc = await connect({ servers: t.context.server.url });
  t.context.cleanups.push(() => nc.close());
  return nc;
}

only('the conformance workloads really are chunked: tasks and replies over max_payload', async (t) => {
  const w = (await shardWorkloads()).find((x) => x.name.includes('inline'))!;
  t.true(w.tasks.some((task) => encodeTask(task).length > 2 * MAX_PAYLOAD));
  const r = await t.context.backend.run(w.tasks[0]);
  t.true(r.measure === 'mfa' && r.sums.byteLength > MAX_PAYLOAD, 'reply over max_payload');
});

only('describe reaches every worker; connect() sizes the window from their threads', async (t) => {
  const d = await t.context.backend.describeAll();
  t.is(d.length, 1);
  t.like(d[0], { threads: 1, transports: ['nats'], readsFiles: true, maxMessageBytes: LIMIT });
  t.is(t.context.backend.concurrency, 1);
});

only('workers in the queue group share the shards: a second worker adds capacity', async (t) => {
  const subject = 'neuromfa.capacity';
  const workers = await Promise.all([0, 1].map(() => natsWorker(t.context.server, {}, subject)));
  t.context.cleanups.push(async () => void (await Promise.all(workers.map((w) => w.stop()))));
  const backend = await NatsBackend.connect({ servers: t.context.server.url, subject, livenessMs: 1500 });
  t.context.cleanups.push(() => backend.close());
  t.is(backend.concurrency, 2);
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => backend.run(edgeTask(i, 20_000))));
  t.deepEqual(results.map((r) => r.id), Array.from({ length: 12 }, (_, i) => i));
  const counts = workers.map((w) => w.service.metrics.total('neuromfa_worker_shards_total'));
  t.true(counts.every((c) => c >= 2), `shards per worker: ${counts}`);
});

only('with watchMs, workers that join later are counted and widen the window; one that leaves narrows it', async (t) => {
  const subject = 'neuromfa.watch';
  const first = await natsWorker(t.context.server, {}, subject);
  t.context.cleanups.push(() => first.stop());
  const seen: number[] = [];
  const backend = await NatsBackend.connect({ servers: t.context.server.url, subject, livenessMs: 1500, watchMs: 100, onWorkers: (n) => seen.push(n) });
  t.context.cleanups.push(() => backend.close());
  t.is(backend.workers, 1);
  t.is(backend.concurrency, 1);
  const second = await natsWorker(t.context.server, { threads: 2 }, subject);
  const waitFor = async (n: number) => {
    for (let i = 0; i < 300 && backend.workers !== n; i++) await new Promise((r) => setTimeout(r, 20));
  };
  await waitFor(2);
  t.is(backend.workers, 2);
  t.is(backend.concurrency, 3, 'one thread + two threads');
  await second.stop();
  await waitFor(1);
  t.is(backend.concurrency, 1);
  t.deepEqual(seen, [2, 1]);
});

only('malformed and oversized messages get an error reply and the worker keeps serving', async (t) => {
  const nc = await rawClient(t);
  const ask = async (data: Uint8Array, h?: Record<string, string>) => {
    const hdrs = headers();
    for (const [k, v] of Object.entries(h ?? {})) hdrs.set(k, v);
    // 503: the worker's one thread is busy with another test's shard; ask again.
    const m = await retryNoResponders(() => nc.request('neuromfa.shards', data, { timeout: 5000, headers: h ? hdrs : undefined }));
    t.is(m.headers?.get(HEADERS.kind), 'reply');
    const reply = decodeReply(m.data);
    if (reply.ok) throw new Error('expected an error reply');
    return reply.error;
  };
  t.like(await ask(new TextEncoder().encode('not msgpack at all')), { name: 'MessageFormatError', retryable: false });
  const oversized = await ask(new Uint8Array(10), { [HEADERS.kind]: 'task', [HEADERS.chunk]: '0', [HEADERS.chunks]: '3', [HEADERS.bytes]: String(2 ** 40) });
  t.is(oversized.name, 'MessageFormatError');
  t.regex(oversized.message, /over the 4194304-byte limit: plan smaller shards/);
  t.like(await ask(new Uint8Array(10), { [HEADERS.kind]: 'task', [HEADERS.chunk]: '0', [HEADERS.chunks]: 'lots', [HEADERS.bytes]: '10' }), { name: 'MessageFormatError' });
  t.like(await ask(new Uint8Array(10), { [HEADERS.kind]: 'reply' }), { name: 'MessageFormatError' });
  // A chunked upload that skips a chunk.
  const sub = nc.subscribe(createInbox());
  const h = headers();
  h.set(HEADERS.kind, 'task');
  h.set(HEADERS.chunk, '0');
  h.set(HEADERS.chunks, '3');
  h.set(HEADERS.bytes, '30');
  const start = () => nc.publish('neuromfa.shards', new Uint8Array(10), { reply: sub.getSubject(), headers: h });
  start();
  for await (const m of sub) {
    const kind = m.headers?.get(HEADERS.kind);
    if (m.headers?.code === 503) {
      // No responders: the worker's one thread is busy with another test's shard; send again.
      await new Promise((r) => setTimeout(r, 20));
      start();
    } else if (kind === 'continue') {
      const skip = headers();
      skip.set(HEADERS.kind, 'task');
      skip.set(HEADERS.chunk, '2');
      nc.publish(m.headers!.get(HEADERS.upload), new Uint8Array(10), { headers: skip });
    } else if (kind === 'reply') {
      const reply = decodeReply(m.data);
      t.true(!reply.ok && /chunk 2 arrived where chunk 1/.test(reply.error.message));
      break;
    }
    // Anything else (a worker's heartbeat on a loaded machine) is not the answer: keep reading.
  }
  sub.unsubscribe();
  t.is((await t.context.backend.run(edgeTask(40, 100))).id, 40);
  t.true(t.context.worker.service.metrics.total('neuromfa_worker_errors_total') >= 5);
});

only('a task over the client limit is a permanent InputError before anything is sent', async (t) => {
  const small = new NatsBackend((await rawClient(t)), { maxMessageBytes: 1024 });
  await t.throwsAsync(small.run(edgeTask(41, 1000)), { instanceOf: InputError, message: /plan smaller shards/ });
});

only('no worker on the subject: a TransportError after the deadline', async (t) => {
  const lonely = new NatsBackend(await rawClient(t), { subject: 'neuromfa.nobody', deadlineMs: 600 });
  const err = await t.throwsAsync(lonely.run(edgeTask(42, 100)), { instanceOf: TransportError, message: /not answered within 600 ms/ });
  t.true(err!.retryable);
});

serialOnly('a worker that goes silent mid-shard is a retryable TransportError within the liveness window', async (t) => {
  // Built from its parts, to hold the worker's connection and cut it as a SIGKILL would.
  const subject = 'neuromfa.silent';
  const gated = new GatedBackend();
  gated.open();
  const service = new ShardService({ threads: 1, maxMessageBytes: LIMIT, backend: gated });
  await service.whenReady();
  gated.shut();
  const nc = await natsConnect({ servers: t.context.server.url });
  await startNatsWorker(service, nc, { subject, maxMessageBytes: LIMIT, heartbeatMs: 200 });
  t.context.cleanups.push(async () => {
    gated.open();
    await service.close();
    await nc.close();
  });
  const backend = await NatsBackend.connect({ servers: t.context.server.url, subject, livenessMs: 800 });
  t.context.cleanups.push(() => backend.close());
  const running = backend.run(edgeTask(43, 100));
  await gated.reached(2);
  // Heartbeats keep a shard alive past the liveness window...
  await new Promise((r) => setTimeout(r, 1200));
  t.is(await Promise.race([running.then(() => 'settled', () => 'settled'), Promise.resolve('running')]), 'running');
  // ...until the worker's connection dies with the shard in flight.
  const cut = Date.now();
  await nc.close();
  const err = await t.throwsAsync(running, { instanceOf: TransportError, message: /stopped answering/ });
  t.true(err!.retryable);
  t.true(Date.now() - cut < 2500, `noticed after ${Date.now() - cut} ms`);
});

serialOnly('a nats-server restart mid-run costs at most a retry: every shard comes back, bit-identical', async (t) => {
  const w = (await shardWorkloads()).find((x) => x.name.includes('inline'))!;
  const want = await Promise.all(w.tasks.map((task) => executeShard(task)));
  let retries = 0;
  const runWithRetry = async (task: ShardTask): Promise<ShardResult> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await t.context.backend.run(task);
      } catch (err) {
        if (!(err instanceof TransportError) || attempt >= 10) throw err;
        retries++;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const all = Promise.all(w.tasks.map(runWithRetry));
  await new Promise((r) => setTimeout(r, 30));
  await t.context.server.restart(300);
  const got = await all;
  t.deepEqual(got.map((r) => ({ ...r, seconds: 0 })), want.map((r) => ({ ...r, seconds: 0 })));
  t.log(`${retries} retries across the restart`);
  // And the worker is still subscribed after it.
  t.is((await t.context.backend.run(edgeTask(44, 100))).id, 44);
});

