import test from 'ava';
import { Packr } from 'msgpackr';
import { decodeDescription, decodeReply, decodeTask, encodeDescription, encodeReply, encodeTask, WIRE_VERSION } from '../proto/codec.js';
import { MessageFormatError } from '../proto/errors.js';
import type { WorkerDescription } from '../proto/describe.js';
import { toWireError, TransportError } from '../proto/errors.js';
import { chunkBytes, headerInt, Reassembly, splitChunks } from '../proto/nats-chunks.js';
import { KERNEL_BACKENDS, type MfaShardResult, type ShardReply, type ShardResult, type ShardTask } from '../proto/shard.js';

/** Every wire message round-trips exactly; truncated, corrupted and mis-shaped bytes are MessageFormatErrors. */

const raw = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });
const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const q = Array.from({ length: 61 }, (_, k) => (k - 30) / 10);

/** Interleaved [src, dst, w] rows in the middle of a SharedArrayBuffer; the weights view starts at w. */
function stridedTask(): ShardTask {
  const rows = 40;
  const shared = new Float64Array(new SharedArrayBuffer((rows * 3 + 8) * 8));
  for (let r = 0; r < rows; r++) shared.set([r >> 3, r, r % 7 === 0 ? NaN : 1 / (1.5 + r * 3.3)], 4 + r * 3);
  const weights = shared.subarray(4 + 2, 4 + rows * 3);
  return { id: 7, measure: 'mfa', params: { threshold: 150, decimals: 2, minNeighbors: 3, q: [-0, ...q.slice(31)] }, input: { kind: 'groups', weights, stride: 3, offsets: Uint32Array.of(0, 8, 8, 40).subarray(0) } };
}

function matrixTask(inline: boolean): ShardTask {
  const pool = new Uint8Array(new SharedArrayBuffer(64));
  pool.forEach((_, i) => (pool[i] = (i * 37) & 255));
  return {
    id: 2 ** 31,
    measure: 'mfa',
    params: { threshold: 99.5, decimals: 0, minNeighbors: 10, q },
    input: {
      kind: 'matrix',
      inputs: 128,
      parts: [
        { tensor: 'gpt_neox.layers.0.attention.query_key_value.weight', file: 'm/model-00001.safetensors', dataStart: 2 ** 40 + 8, dtype: 'F16', rows: 384, transposed: false },
        { tensor: 'h.0.attn.c_attn.weight', file: '/abs/ü.safetensors', dataStart: 0, dtype: 'BF16', rows: 3, transposed: true },
      ],
      colStart: 5,
      colEnd: 77,
      ...(inline ? { inline: [pool.subarray(3, 9), new Uint8Array(0), Uint8Array.of(1, 2, 3)] } : {}),
    },
  };
}

test('a strided, SharedArrayBuffer-backed edge-list task round-trips bit for bit, only its view sent', (t) => {
  const task = stridedTask();
  const bytes = encodeTask(task);
  const back = decodeTask(bytes);
  t.deepEqual(back, task);
  if (back.input.kind !== 'groups' || task.input.kind !== 'groups' || back.measure !== 'mfa') return t.fail();
  t.true(bytesOf(back.input.weights).equals(bytesOf(task.input.weights)), 'weights, NaN included, bit for bit');
  t.true(Object.is(back.params.q[0], -0), '-0 stays -0');
  t.false(back.input.weights.buffer instanceof SharedArrayBuffer, 'the decoded copy owns its buffer');
  t.true(bytes.length < task.input.weights.buffer.byteLength + 1024, 'the view, not the whole shared buffer');
  const nfd: ShardTask = { id: 0, measure: 'nfd', params: { threshold: 200, decimals: 0 }, input: task.input };
  t.deepEqual(decodeTask(encodeTask(nfd)), nfd);
});

test('matrix tasks round-trip with and without inline bytes; inline blocks come back aligned', (t) => {
  for (const inline of [false, true]) {
    const task = matrixTask(inline);
    const back = decodeTask(encodeTask(task));
    t.deepEqual(back, task);
    if (back.input.kind !== 'matrix') return t.fail();
    t.is('inline' in back.input, inline);
    for (const b of back.input.inline ?? []) t.is(b.byteOffset, 0);
  }
});

test('replies round-trip exactly: mfa and nfd results, typed errors', (t) => {
  const sums = Float64Array.of(0, 1e-300, 5e-324, 1.7976931348623157e308, Math.PI, 2 ** 53 + 2);
  const result: ShardResult = { id: 3, measure: 'mfa', backend: 'webasm', selected: 2, present: Int32Array.of(2, 5), sums, nodes: 4, edges: 2 ** 40, skippedNonFinite: 1, bytesRead: 12, seconds: 0.125 };
  const mfa: ShardReply = { ok: true, result };
  const nfd: ShardReply = { ok: true, result: { id: 4, measure: 'nfd', backend: 'f64', values: Float64Array.of(NaN, -0, Infinity, 1.5), nodes: 4, edges: 9, skippedNonFinite: 0, bytesRead: 0, seconds: 1e-6 } };
  const failed: ShardReply = { ok: false, error: toWireError(new TransportError('gone')) };
  for (const r of [mfa, nfd, failed]) t.deepEqual(decodeReply(encodeReply(r)), r);
  for (const backend of KERNEL_BACKENDS) {
    const r: ShardReply = { ok: true, result: { ...result, backend } };
    t.deepEqual(decodeReply(encodeReply(r)), r, backend);
  }
  const back = decodeReply(encodeReply(nfd));
  if (!back.ok || back.result.measure !== 'nfd') return t.fail();
  t.true(bytesOf(back.result.values).equals(Buffer.from(Float64Array.of(NaN, -0, Infinity, 1.5).buffer)));
});

test('a worker description round-trips, backends with their availability; mis-shaped ones are refused by field', (t) => {
  const backends = [
    { name: 'f64', available: true, detail: 'CPU, float64' },
    { name: 'webgpu', available: false, detail: "libstdc++.so.6: version `GLIBCXX_3.4.32' not found" },
    { name: 'webasm', available: true, detail: 'webasm, 1 thread' },
  ];
  const d: WorkerDescription = { version: '0.1.0', threads: 4, backend: 'webasm', backends, transports: ['grpc', 'nats'], readsFiles: false, maxMessageBytes: 64 << 20, host: 'w-0' };
  t.deepEqual(decodeDescription(encodeDescription(d)), d);
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ threads: 0 }, /^threads/],
    [{ backends: ['f64'] }, /^backends\[0\]: expected a map/],
    [{ backends: [{ name: 'f64', available: 'yes', detail: '' }] }, /^backends\[0\]\.available: expected a boolean/],
    [{ backends: [{ name: 'gl', available: false }] }, /^backends\[0\]\.detail: expected a string/],
    [{ backends: 'f64' }, /^backends: expected a list/],
    [{ backend: 7 }, /^backend: expected a string/],
  ];
  for (const [patch, message] of cases) t.throws(() => decodeDescription(raw.pack({ v: WIRE_VERSION, ...d, ...patch })), { instanceOf: MessageFormatError, message }, JSON.stringify(patch));
});

test('every truncation of a task is a MessageFormatError', (t) => {
  const bytes = encodeTask(matrixTask(true));
  for (let n = 0; n < bytes.length; n++) t.throws(() => decodeTask(bytes.subarray(0, n)), { instanceOf: MessageFormatError }, `cut at ${n}`);
  t.throws(() => decodeTask(Buffer.concat([bytes, Buffer.of(0)])), { instanceOf: MessageFormatError }, 'trailing byte');
});

test('corrupted bytes decode to a valid task or fail as MessageFormatError, never anything else', (t) => {
  for (const task of [stridedTask(), matrixTask(true)]) {
    const bytes = encodeTask(task);
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0xff, 0x01, 0x80]) {
        const bad = Uint8Array.from(bytes);
        bad[i] ^= mask;
        try {
          const back = decodeTask(bad);
          // It decoded: then it is a well-formed task (a changed number, a changed name).
          t.true(back.measure === 'mfa' || back.measure === 'nfd');
        } catch (err) {
          if (!(err instanceof MessageFormatError)) t.fail(`byte ${i} ^ ${mask}: ${(err as Error).name}: ${(err as Error).message}`);
        }
      }
    }
  }
  t.pass();
});

/** Decodes `task` as plain objects, applies `mutate`, packs it again: shapes the encoder never makes. */
function mutated(task: ShardTask, mutate: (o: any) => void): Uint8Array {
  const o = raw.unpack(encodeTask(task));
  mutate(o);
  return raw.pack(o);
}

test('mis-shaped tasks are refused with the field named', (t) => {
  const cases: Array<[string, ShardTask, (o: any) => void, RegExp]> = [
    ['wire version', stridedTask(), (o) => (o.v = 2), /wire version 2/],
    ['only a version', stridedTask(), (o) => Object.keys(o).forEach((k) => k !== 'v' && delete o[k]), /^id: expected an integer/],
    ['measure', stridedTask(), (o) => (o.measure = 'box'), /measure/],
    ['negative id', stridedTask(), (o) => (o.id = -1), /^id/],
    ['threshold <= 1', stridedTask(), (o) => (o.params.threshold = 1), /params\.threshold/],
    ['decimals', stridedTask(), (o) => (o.params.decimals = 7), /params\.decimals/],
    ['q not increasing', stridedTask(), (o) => (o.params.q = bytesOf(Float64Array.of(1, 1))), /params\.q/],
    ['q ragged bytes', stridedTask(), (o) => (o.params.q = Buffer.alloc(12)), /params\.q.*multiple of 8/],
    ['offsets decreasing', stridedTask(), (o) => (o.input.offsets = bytesOf(Uint32Array.of(0, 9, 8, 40))), /input\.offsets/],
    ['offsets not from 0', stridedTask(), (o) => (o.input.offsets = bytesOf(Uint32Array.of(1, 40))), /input\.offsets/],
    ['weights too short', stridedTask(), (o) => (o.input.weights = bytesOf(new Float64Array(100))), /input\.weights/],
    ['stride 0', stridedTask(), (o) => (o.input.stride = 0), /input\.stride/],
    ['weights as a list', stridedTask(), (o) => (o.input.weights = [1, 2]), /input\.weights: expected binary/],
    ['nfd of a matrix', matrixTask(false), (o) => (o.measure = 'nfd'), /input\.kind/],
    ['colEnd past inputs', matrixTask(false), (o) => (o.input.colEnd = 129), /input\.colEnd/],
    ['empty range', matrixTask(false), (o) => (o.input.colEnd = o.input.colStart), /input\.colEnd/],
    ['no parts', matrixTask(false), (o) => (o.input.parts = []), /input\.parts/],
    ['dtype', matrixTask(false), (o) => (o.input.parts[1].dtype = 'I8'), /input\.parts\[1\]\.dtype/],
    ['file not a string', matrixTask(false), (o) => (o.input.parts[0].file = 5), /input\.parts\[0\]\.file/],
    ['inline not binary', matrixTask(true), (o) => (o.input.inline = ['x']), /input\.inline\[0\]/],
  ];
  for (const [what, task, mutate, message] of cases) {
    t.throws(() => decodeTask(mutated(task, mutate)), { instanceOf: MessageFormatError, message }, what);
  }
  t.throws(() => decodeTask(raw.pack([1, 2, 3])), { instanceOf: MessageFormatError, message: /expected a map/ });
  t.throws(() => decodeTask(Buffer.from('GET / HTTP/1.1\r\n')), { instanceOf: MessageFormatError });
  t.throws(() => decodeReply(raw.pack({ v: 1, ok: true, result: { id: 1, measure: 'mfa' } })), { instanceOf: MessageFormatError, message: /result\.backend/ });
  const good = raw.unpack(encodeReply({ ok: true, result: { id: 1, measure: 'nfd', backend: 'f64', values: Float64Array.of(1), nodes: 1, edges: 1, skippedNonFinite: 0, bytesRead: 0, seconds: 0 } }));
  for (const backend of ['cuda', '', undefined, 1]) {
    t.throws(() => decodeReply(raw.pack({ ...good, result: { ...good.result, backend } })), { instanceOf: MessageFormatError, message: /^result\.backend: expected f64 \| webgpu \| gl \| webasm \| cpu/ }, String(backend));
  }
  t.throws(() => decodeReply(raw.pack({ v: 1, ok: false, error: { name: 'X' } })), { instanceOf: MessageFormatError, message: /error\.code/ });
});

function sampledTask(): ShardTask {
  return { id: 12, measure: 'sampled', params: { threshold: 150, decimals: 0, minNeighbors: 10, q }, input: { kind: 'model', model: 'hf://EleutherAI/pythia-160m@' + 'a'.repeat(40), layerSample: 32, samples: [3, 4, 9], shardsPerSample: 4, perLayer: true } };
}

test('sampled shards and their results round-trip exactly; mis-shaped ones are refused with the field named', (t) => {
  t.deepEqual(decodeTask(encodeTask(sampledTask())), sampledTask());
  const partial = (id: number): MfaShardResult => ({ id, measure: 'mfa', backend: 'f64', selected: 2, present: Int32Array.of(3, 5), sums: Float64Array.from({ length: 3 * 61 }, (_, k) => k / 7), nodes: 4, edges: 20, skippedNonFinite: 1, bytesRead: 0, seconds: 0.25 });
  const reply: ShardReply = {
    ok: true,
    result: {
      id: 12,
      measure: 'sampled',
      backend: 'f64',
      layout: 'gpt-neox',
      architecture: 'GPTNeoXForCausalLM',
      blockCount: 2,
      worker: 'w1:42',
      requests: 17,
      samples: [
        { sample: 3, bytesSha256: 'b'.repeat(64), partials: [partial(0), partial(1)], blocks: [0, 1] },
        { sample: 4, bytesSha256: 'c'.repeat(64), partials: [partial(6)] },
      ],
      nodes: 12,
      edges: 60,
      skippedNonFinite: 3,
      bytesRead: 123_456,
      seconds: 1.5,
    },
  };
  t.deepEqual(decodeReply(encodeReply(reply)), reply);
  const cases: Array<[string, (o: any) => void, RegExp]> = [
    ['model empty', (o) => (o.input.model = ''), /^input\.model: expected a model reference/],
    ['model with NUL', (o) => (o.input.model = 'a\0b'), /^input\.model/],
    ['no samples', (o) => (o.input.samples = []), /^input\.samples: expected 1 to 100000 sample indices/],
    ['negative sample', (o) => (o.input.samples = [1, -2]), /^input\.samples\[1\]/],
    ['layer sample 0', (o) => (o.input.layerSample = 0), /^input\.layerSample/],
    ['perLayer not boolean', (o) => (o.input.perLayer = 1), /^input\.perLayer/],
    ['a model input on an mfa shard', (o) => (o.measure = 'mfa'), /^input\.kind: expected groups \| matrix/],
    ['nfd of a model', (o) => (o.measure = 'nfd'), /^input\.kind/],
  ];
  for (const [what, mutate, message] of cases) t.throws(() => decodeTask(mutated(sampledTask(), mutate)), { instanceOf: MessageFormatError, message }, what);
  const wire = raw.unpack(encodeReply(reply));
  const bad = (f: (r: any) => void) => {
    const copy = structuredClone(wire);
    f(copy.result);
    return raw.pack(copy);
  };
  t.throws(() => decodeReply(bad((r) => (r.samples[0].partials[0].measure = 'nfd'))), { instanceOf: MessageFormatError, message: /^result\.samples\[0\]\.partials\[0\]/ });
  t.throws(() => decodeReply(bad((r) => (r.samples[0].blocks = [0]))), { instanceOf: MessageFormatError, message: /^result\.samples\[0\]\.blocks: expected one block per partial \(2\)/ });
  t.throws(() => decodeReply(bad((r) => delete r.worker)), { instanceOf: MessageFormatError, message: /^result\.worker/ });
});

test('NATS chunks: split and reassemble; refusals before any allocation', (t) => {
  const message = Uint8Array.from({ length: 5000 }, (_, i) => i & 255);
  const size = chunkBytes(2048);
  const pieces = splitChunks(message, size);
  t.is(pieces.length, Math.ceil(5000 / size));
  const r = new Reassembly(pieces.length, message.length, 1 << 20);
  pieces.forEach((p, k) => r.add(k, p));
  t.deepEqual(r.message(), message);
  t.is(splitChunks(new Uint8Array(0), size).length, 1, 'an empty message is one empty chunk');
  t.throws(() => new Reassembly(2, 2 ** 50, 64 << 20), { instanceOf: MessageFormatError, message: /over the 67108864-byte limit: plan smaller shards/ });
  const out = new Reassembly(3, 10, 100);
  t.throws(() => out.add(1, new Uint8Array(3)), { instanceOf: MessageFormatError, message: /chunk 1 arrived where chunk 0/ });
  const over = new Reassembly(2, 4, 100);
  t.throws(() => over.add(0, new Uint8Array(5)), { instanceOf: MessageFormatError, message: /exceed/ });
  const short = new Reassembly(1, 4, 100);
  t.throws(() => short.add(0, new Uint8Array(3)), { instanceOf: MessageFormatError, message: /3 bytes, 4 were announced/ });
  t.throws(() => headerInt('', 'Neuromfa-Chunk', 0, 5), { instanceOf: MessageFormatError });
  t.throws(() => headerInt('1e3', 'Neuromfa-Chunk', 0, 5000), { instanceOf: MessageFormatError });
  t.is(headerInt('12', 'Neuromfa-Chunk', 0, 12), 12);
});
