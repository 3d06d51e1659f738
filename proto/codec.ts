/**
 * msgpackr codecs of the wire messages: ShardTask, ShardReply and WorkerDescription. The
 * gRPC service carries these bytes in a `bytes` field and NATS carries them as payloads, so
 * both transports share one set of TypeScript types (shard.ts) and one codec.
 *
 * The wire form is a plain MessagePack map with the TypeScript field names (no msgpackr
 * records, no extensions: any MessagePack library can read it) and a version `v`. Typed
 * arrays travel as `bin` of their little-endian bytes — only the bytes of the view, so a
 * subarray of a big SharedArrayBuffer sends its slice — and `params.q` travels as float64
 * bytes too, so -0 and every bit of every value come back exactly.
 *
 * Decoding is strict: anything that is not exactly the expected shape is a
 * MessageFormatError naming the field, never a TypeError deep in the kernel.
 */
import { Packr } from 'msgpackr';
import { MessageFormatError } from './errors.js';
import { checkDescription, type WorkerDescription } from './describe.js';
import { bucketRangeProblem, DECIMALS, MAX_DIMENSION, MAX_GROUP_STRIDE, MAX_LAYERS, MAX_MATRIX_PARTS, MAX_MIN_NEIGHBORS, MAX_Q_COUNT, MAX_SAMPLES, MAX_SHARD_WEIGHT_BYTES, qGridProblem } from './limits.js';
import { KERNEL_BACKENDS, type MatrixPart, type MfaParams, type MfaShardResult, type ModelSamples, type NfdParams, type ShardInput, type ShardReply, type ShardResult, type ShardTask } from './shard.js';

/** Longest model reference accepted (an hf:// reference with a commit, or a path under the model root). */
const MAX_MODEL_REF = 4096;

export const WIRE_VERSION = 1;

/** Default cap on one message, both transports (workers' --max-message-mb): a 32 MB shard with room. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 << 20;


// The typed-array bytes are written and read as the host stores them; every platform this
// runs on (x64, arm64) is little-endian, and a big-endian host fails loudly instead of silently.
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

type Typed = Float64Array | Int32Array | Uint32Array | Uint8Array;

function bytesOf(a: Typed): Uint8Array {
  if (!LITTLE_ENDIAN) throw new MessageFormatError('typed arrays are sent little-endian; this host is big-endian');
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function pack(message: object): Uint8Array {
  return packr.pack({ v: WIRE_VERSION, ...message });
}

/** Unpacks one whole message: truncated, trailing or non-MessagePack bytes are a MessageFormatError. */
function unpack(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (err) {
    throw new MessageFormatError(`malformed ${what} message (${bytes.length} bytes): ${(err as Error).message}`, { cause: err });
  }
  const o = obj(value, what);
  if (o.v !== WIRE_VERSION) throw new MessageFormatError(`${what} message has wire version ${JSON.stringify(o.v)}; this build speaks ${WIRE_VERSION}`);
  return o;
}

// ---- shape checks: each names the field it rejects ----

/** A short description of a rejected value: never stringifies a huge array or map whole. */
function describeValue(got: unknown): string {
  if (got instanceof Uint8Array) return `${got.length} bytes`;
  if (Array.isArray(got)) return `an array of ${got.length} items`;
  if (ArrayBuffer.isView(got)) return `[${Array.from(got as Uint32Array).slice(0, 8).join(', ')}]`;
  if (typeof got === 'string') return JSON.stringify(got.length > 60 ? `${got.slice(0, 60)}…` : got);
  if (typeof got === 'object' && got !== null) return 'a map';
  return String(got);
}

const bad = (path: string, want: string, got: unknown) => new MessageFormatError(`${path}: expected ${want}, got ${describeValue(got)}`);

function obj(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) throw bad(path, 'a map', v);
  return v as Record<string, unknown>;
}
function int(v: unknown, path: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(path, `an integer in [${min}, ${max}]`, v);
  return v;
}
function num(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(path, 'a finite number', v);
  return v;
}
function str(v: unknown, path: string): string {
  if (typeof v !== 'string') throw bad(path, 'a string', v);
  return v;
}
function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw bad(path, 'a boolean', v);
  return v;
}
function oneOf<T extends string>(v: unknown, path: string, values: readonly T[]): T {
  if (!values.includes(v as T)) throw bad(path, values.join(' | '), v);
  return v as T;
}
function list(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw bad(path, 'an array', v);
  return v;
}
function bin(v: unknown, path: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw bad(path, 'binary', v);
  return v;
}
/** A fresh, aligned copy: received bytes may sit at any offset of the message buffer. */
function typed<T extends Typed>(v: unknown, path: string, Ctor: { new (b: ArrayBuffer): T; BYTES_PER_ELEMENT: number }): T {
  const b = bin(v, path);
  if (b.byteLength % Ctor.BYTES_PER_ELEMENT !== 0) throw bad(path, `a multiple of ${Ctor.BYTES_PER_ELEMENT} bytes`, b);
  if (!LITTLE_ENDIAN) throw new MessageFormatError('typed arrays are sent little-endian; this host is big-endian');
  const copy = new ArrayBuffer(b.byteLength);
  new Uint8Array(copy).set(b);
  return new Ctor(copy);
}

// ---- ShardTask ----

export function encodeTask(task: ShardTask): Uint8Array {
  const { params, input } = task;
  const wireParams =
    task.measure !== 'nfd'
      ? { threshold: task.params.threshold, decimals: task.params.decimals, minNeighbors: task.params.minNeighbors, q: bytesOf(Float64Array.from(task.params.q)) }
      : { threshold: params.threshold, decimals: params.decimals };
  const wireInput =
    input.kind === 'model'
      ? { kind: 'model', model: input.model, layerSample: input.layerSample, samples: input.samples, shardsPerSample: input.shardsPerSample, perLayer: input.perLayer }
      : input.kind === 'groups'
      ? { kind: 'groups', weights: bytesOf(input.weights), stride: input.stride, offsets: bytesOf(input.offsets) }
      : {
          kind: 'matrix',
          inputs: input.inputs,
          parts: input.parts.map(({ tensor, file, dataStart, dtype, rows, transposed }) => ({ tensor, file, dataStart, dtype, rows, transposed })),
          colStart: input.colStart,
          colEnd: input.colEnd,
          ...(input.inline ? { inline: input.inline.map((b) => bytesOf(b)) } : {}),
        };
  return pack({ id: task.id, measure: task.measure, params: wireParams, input: wireInput });
}

export function decodeTask(bytes: Uint8Array): ShardTask {
  const o = unpack(bytes, 'ShardTask');
  const id = int(o.id, 'id');
  const measure = oneOf(o.measure, 'measure', ['mfa', 'nfd', 'sampled'] as const);
  const p = obj(o.params, 'params');
  const threshold = num(p.threshold, 'params.threshold');
  if (!(threshold > 1)) throw bad('params.threshold', 'a number > 1', threshold);
  const decimals = int(p.decimals, 'params.decimals', DECIMALS.min, DECIMALS.max);
  // The same limits the CLI enforces (proto/limits.ts): a task the CLI could not have sent is malformed.
  const range = bucketRangeProblem(threshold, decimals);
  if (range) throw new MessageFormatError(`params: ${range}`);
  if (measure !== 'nfd') {
    // Checked before the input is copied: 2,000,000 q values must cost nothing to refuse.
    const qBytes = bin(p.q, 'params.q');
    if (qBytes.byteLength > MAX_Q_COUNT * 8) throw bad('params.q', `at most ${MAX_Q_COUNT} values`, qBytes);
  }
  const rawInput = obj(o.input, 'input');
  if (measure === 'sampled') {
    const params = mfaParamsOf(p, threshold, decimals);
    return { id, measure, params, input: decodeModelSamples(rawInput) };
  }
  const input = decodeInput(rawInput);
  if (measure === 'nfd') {
    if (input.kind !== 'groups') throw bad('input.kind', 'groups (nfd shards are edge lists)', input.kind);
    const params: NfdParams = { threshold, decimals };
    return { id, measure, params, input };
  }
  return { id, measure, params: mfaParamsOf(p, threshold, decimals), input };
}

function mfaParamsOf(p: Record<string, unknown>, threshold: number, decimals: number): MfaParams {
  const q = Array.from(typed(p.q, 'params.q', Float64Array));
  const qProblem = qGridProblem(q);
  if (qProblem) throw new MessageFormatError(`params.q: ${qProblem}`);
  return { threshold, decimals, minNeighbors: int(p.minNeighbors, 'params.minNeighbors', 0, MAX_MIN_NEIGHBORS), q };
}

function decodeModelSamples(i: Record<string, unknown>): ModelSamples {
  oneOf(i.kind, 'input.kind', ['model'] as const);
  const model = str(i.model, 'input.model');
  if (model === '' || model.length > MAX_MODEL_REF || model.includes('\0')) throw bad('input.model', `a model reference of 1 to ${MAX_MODEL_REF} characters without NUL`, model);
  const samples = list(i.samples, 'input.samples');
  if (samples.length === 0 || samples.length > MAX_SAMPLES) throw bad('input.samples', `1 to ${MAX_SAMPLES} sample indices`, samples);
  return {
    kind: 'model',
    model,
    layerSample: int(i.layerSample, 'input.layerSample', 1, MAX_LAYERS),
    samples: samples.map((v, k) => int(v, `input.samples[${k}]`, 0, 2 ** 32 - 1)),
    shardsPerSample: int(i.shardsPerSample, 'input.shardsPerSample', 1, 1 << 16),
    perLayer: bool(i.perLayer, 'input.perLayer'),
  };
}

const DTYPES = ['F64', 'F32', 'F16', 'BF16'] as const;
const DTYPE_BYTES: Record<(typeof DTYPES)[number], number> = { F64: 8, F32: 4, F16: 2, BF16: 2 };

function decodeInput(i: Record<string, unknown>): ShardInput {
  const kind = oneOf(i.kind, 'input.kind', ['groups', 'matrix'] as const);
  if (kind === 'groups') {
    const stride = int(i.stride, 'input.stride', 1, MAX_GROUP_STRIDE);
    const offsets = typed(i.offsets, 'input.offsets', Uint32Array);
    const weights = typed(i.weights, 'input.weights', Float64Array);
    if (offsets.length === 0 || offsets[0] !== 0) throw bad('input.offsets', 'node offsets starting at 0', offsets.slice(0, 4));
    for (let k = 1; k < offsets.length; k++) if (offsets[k] < offsets[k - 1]) throw bad('input.offsets', 'non-decreasing offsets', offsets.slice(k - 1, k + 1));
    const edges = offsets[offsets.length - 1];
    // The kernel reads weights[e * stride] for e < edges.
    if (edges > 0 && weights.length < (edges - 1) * stride + 1) throw bad('input.weights', `at least ${(edges - 1) * stride + 1} values for ${edges} edges`, weights.length);
    return { kind, weights, stride, offsets };
  }
  const inputs = int(i.inputs, 'input.inputs', 1, MAX_DIMENSION);
  const colStart = int(i.colStart, 'input.colStart', 0, inputs - 1);
  const colEnd = int(i.colEnd, 'input.colEnd', colStart + 1, inputs);
  const partList = list(i.parts, 'input.parts');
  if (partList.length === 0 || partList.length > MAX_MATRIX_PARTS) throw bad('input.parts', `1 to ${MAX_MATRIX_PARTS} parts`, partList.length);
  const parts = partList.map((raw, k): MatrixPart => {
    const p = obj(raw, `input.parts[${k}]`);
    const at = (f: string) => `input.parts[${k}].${f}`;
    return {
      tensor: str(p.tensor, at('tensor')),
      file: str(p.file, at('file')),
      dataStart: int(p.dataStart, at('dataStart')),
      dtype: oneOf(p.dtype, at('dtype'), DTYPES),
      rows: int(p.rows, at('rows'), 1, MAX_DIMENSION),
      transposed: bool(p.transposed, at('transposed')),
    };
  });
  // The weights the shard covers bound its memory and work; a planned shard is tens of MB.
  const weightBytes = parts.reduce((a, p) => a + p.rows * (colEnd - colStart) * DTYPE_BYTES[p.dtype], 0);
  if (weightBytes > MAX_SHARD_WEIGHT_BYTES) throw bad('input', `a shard of at most ${MAX_SHARD_WEIGHT_BYTES} weight bytes`, weightBytes);
  const input: ShardInput = { kind, inputs, parts, colStart, colEnd };
  if (i.inline !== undefined) {
    // Copied: the kernel views F16/F32/F64 blocks in place, which needs aligned offsets.
    input.inline = list(i.inline, 'input.inline').map((b, k) => typed(b, `input.inline[${k}]`, Uint8Array));
  }
  return input;
}

// ---- ShardReply ----

export function encodeReply(reply: ShardReply): Uint8Array {
  if (!reply.ok) return pack({ ok: false, error: { name: reply.error.name, code: reply.error.code, message: reply.error.message, retryable: reply.error.retryable } });
  return pack({ ok: true, result: wireResult(reply.result) });
}

function wireResult(r: ShardResult): object {
  const stats = { id: r.id, measure: r.measure, backend: r.backend, nodes: r.nodes, edges: r.edges, skippedNonFinite: r.skippedNonFinite, bytesRead: r.bytesRead, seconds: r.seconds };
  if (r.measure === 'mfa') return { ...stats, selected: r.selected, present: bytesOf(r.present), sums: bytesOf(r.sums) };
  if (r.measure === 'nfd') return { ...stats, values: bytesOf(r.values) };
  return {
    ...stats,
    layout: r.layout,
    architecture: r.architecture,
    blockCount: r.blockCount,
    worker: r.worker,
    requests: r.requests,
    samples: r.samples.map((s) => ({ sample: s.sample, bytesSha256: s.bytesSha256, partials: s.partials.map(wireResult), ...(s.blocks ? { blocks: s.blocks } : {}) })),
  };
}

export function decodeReply(bytes: Uint8Array): ShardReply {
  const o = unpack(bytes, 'ShardReply');
  if (bool(o.ok, 'ok')) return { ok: true, result: decodeResult(obj(o.result, 'result')) };
  const e = obj(o.error, 'error');
  return { ok: false, error: { name: str(e.name, 'error.name'), code: str(e.code, 'error.code'), message: str(e.message, 'error.message'), retryable: bool(e.retryable, 'error.retryable') } };
}

function decodeResult(r: Record<string, unknown>, path = 'result'): ShardResult {
  const stats = {
    id: int(r.id, `${path}.id`),
    backend: oneOf(r.backend, `${path}.backend`, KERNEL_BACKENDS),
    nodes: int(r.nodes, `${path}.nodes`),
    edges: int(r.edges, `${path}.edges`),
    skippedNonFinite: int(r.skippedNonFinite, `${path}.skippedNonFinite`),
    bytesRead: int(r.bytesRead, `${path}.bytesRead`),
    seconds: num(r.seconds, `${path}.seconds`),
  };
  const measure = oneOf(r.measure, `${path}.measure`, ['mfa', 'nfd', 'sampled'] as const);
  if (measure === 'nfd') return { ...stats, measure, values: typed(r.values, `${path}.values`, Float64Array) };
  if (measure === 'mfa') {
    return {
      ...stats,
      measure,
      selected: int(r.selected, `${path}.selected`),
      present: typed(r.present, `${path}.present`, Int32Array),
      sums: typed(r.sums, `${path}.sums`, Float64Array),
    };
  }
  return {
    ...stats,
    measure,
    layout: str(r.layout, `${path}.layout`),
    architecture: str(r.architecture, `${path}.architecture`),
    blockCount: int(r.blockCount, `${path}.blockCount`, 0, MAX_LAYERS),
    worker: str(r.worker, `${path}.worker`),
    requests: int(r.requests, `${path}.requests`),
    samples: list(r.samples, `${path}.samples`).map((raw, k) => {
      const s = obj(raw, `${path}.samples[${k}]`);
      const at = `${path}.samples[${k}]`;
      const partials = list(s.partials, `${at}.partials`).map((p, j) => {
        const d = decodeResult(obj(p, `${at}.partials[${j}]`), `${at}.partials[${j}]`);
        if (d.measure !== 'mfa') throw bad(`${at}.partials[${j}].measure`, 'mfa', d.measure);
        return d satisfies MfaShardResult;
      });
      const blocks = s.blocks === undefined ? undefined : list(s.blocks, `${at}.blocks`).map((b, j) => int(b, `${at}.blocks[${j}]`));
      if (blocks && blocks.length !== partials.length) throw bad(`${at}.blocks`, `one block per partial (${partials.length})`, blocks);
      return { sample: int(s.sample, `${at}.sample`), bytesSha256: str(s.bytesSha256, `${at}.bytesSha256`), partials, ...(blocks ? { blocks } : {}) };
    }),
  };
}

// ---- WorkerDescription (gRPC has proto fields for it; NATS sends it as msgpack) ----

export function encodeDescription(d: WorkerDescription): Uint8Array {
  return pack({ ...d });
}

export function decodeDescription(bytes: Uint8Array): WorkerDescription {
  const o = unpack(bytes, 'WorkerDescription');
  delete o.v;
  return checkDescription(o, (path, want, got) => bad(path, want, got));
}
