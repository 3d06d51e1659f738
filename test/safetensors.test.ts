import test, { type ExecutionContext } from 'ava';
import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, SafetensorsFormatError } from '../proto/errors.js';
import { FileByteSource, MemoryByteSource, type ByteSource } from '../worker/io/byte-source.js';
import { bf16BitsToNumber, bytesPerElement, decodeFloats, f16BitsToNumber, isFloatDType } from '../worker/io/dtype.js';
import { readRowList, readRows, readSafetensorsHeader, requireFloatTensor } from '../worker/io/safetensors.js';
import { float64ToBF16Bits, float64ToF16Bits, writeSafetensors } from '../worker/io/safetensors-writer.js';
import { makeTmpDir } from './helpers/tmp.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
test.before(async () => {
  tmp = await makeTmpDir();
});
test.after.always(async () => {
  await tmp.cleanup();
});

/** Raw safetensors bytes: u64 LE header length, the header text as given, then `data`. */
function rawFile(header: unknown, data: Uint8Array | number = 0): Uint8Array {
  const text = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + text.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(body, 8 + text.length);
  return out;
}

let seq = 0;
async function fileWith(bytes: Uint8Array | string): Promise<string> {
  const path = join(tmp.dir, `f${seq++}.safetensors`);
  await writeFile(path, bytes);
  return path;
}

async function parse(path: string) {
  const src = await FileByteSource.open(path);
  try {
    return await readSafetensorsHeader(src);
  } finally {
    await src.close();
  }
}

async function formatError(t: ExecutionContext, path: string, message: string) {
  const err = await t.throwsAsync(parse(path), { instanceOf: SafetensorsFormatError });
  t.is(err?.message, `${path}: ${message}`);
}

// ---- dtype ----------------------------------------------------------------------------

test('dtype table covers every safetensors dtype and only those', (t) => {
  const sizes = { BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8 };
  for (const [d, n] of Object.entries(sizes)) t.is(bytesPerElement(d), n, d);
  t.is(bytesPerElement('constructor'), undefined);
  t.is(bytesPerElement('f32'), undefined);
  t.deepEqual(['F64', 'F32', 'F16', 'BF16', 'I8', 'U8'].map(isFloatDType), [true, true, true, true, false, false]);
});

test('known f16 bit patterns', (t) => {
  const cases: Array<[number, number]> = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519.99, 0x7bff],
    [65520, 0x7c00], // halfway to 65536: ties to even → inf
    [1e6, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal → even (0)
    [3 * 2 ** -26, 0x0001], // 0.75 of a step
    [3 * 2 ** -25, 0x0002], // 1.5 steps → 2 (even)
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -14 - 2 ** -25, 0x0400], // 1023.5 subnormal steps round up into the normals
    [0.1, 0x2e66],
    [1 + 2 ** -11, 0x3c00], // tie → even mantissa
    [1 + 3 * 2 ** -11, 0x3c02],
    [0, 0x0000],
    [-0, 0x8000],
    [NaN, 0x7e00],
  ];
  for (const [x, bits] of cases) t.is(float64ToF16Bits(x), bits, `f16(${x})`);
  t.is(f16BitsToNumber(0x0001), 2 ** -24);
  t.is(f16BitsToNumber(0x03ff), 1023 * 2 ** -24);
  t.is(f16BitsToNumber(0x7bff), 65504);
  t.is(f16BitsToNumber(0xfc00), -Infinity);
  t.true(Number.isNaN(f16BitsToNumber(0x7c01)));
  t.true(Object.is(f16BitsToNumber(0x8000), -0));
});

test('known bf16 bit patterns', (t) => {
  const cases: Array<[number, number]> = [
    [1, 0x3f80],
    [-1, 0xbf80],
    [1 + 2 ** -8, 0x3f80], // tie → even
    [1 + 3 * 2 ** -8, 0x3f82],
    [3.3895313892515355e38, 0x7f7f], // largest finite
    [3.4028234663852886e38, 0x7f80], // float32 max rounds past it to inf
    [2 ** -133, 0x0001], // smallest subnormal
    [2 ** -134, 0x0000],
    [2 ** -126, 0x0080],
    [-Infinity, 0xff80],
    [NaN, 0x7fc0],
    [-0, 0x8000],
  ];
  for (const [x, bits] of cases) t.is(float64ToBF16Bits(x), bits, `bf16(${x})`);
  t.is(bf16BitsToNumber(0x3f80), 1);
  t.is(bf16BitsToNumber(0x0001), 2 ** -133);
  t.true(Number.isNaN(bf16BitsToNumber(0x7fc1)));
});

test('every f16 and bf16 bit pattern survives decode then encode', (t) => {
  for (let b = 0; b < 65536; b++) {
    const h = f16BitsToNumber(b);
    const back = float64ToF16Bits(h);
    if (Number.isNaN(h)) {
      if (back !== 0x7e00) t.fail(`f16 NaN ${b}`);
    } else if (back !== b) t.fail(`f16 ${b.toString(16)} → ${h} → ${back.toString(16)}`);
    const f = bf16BitsToNumber(b);
    const fb = float64ToBF16Bits(f);
    if (Number.isNaN(f)) {
      if (fb !== 0x7fc0) t.fail(`bf16 NaN ${b}`);
    } else if (fb !== b) t.fail(`bf16 ${b.toString(16)} → ${f} → ${fb.toString(16)}`);
  }
  t.pass();
});

test('decodeFloats agrees with the scalar decoders, also on unaligned views', (t) => {
  const bits = new Uint16Array(65536).map((_, i) => i);
  const bytes = new Uint8Array(1 + bits.byteLength);
  bytes.set(new Uint8Array(bits.buffer), 1);
  const view = bytes.subarray(1); // byteOffset 1: typed-array views would throw
  const f16 = decodeFloats('F16', view);
  const bf16 = decodeFloats('BF16', view);
  for (let b = 0; b < 65536; b++) {
    if (!Object.is(f16[b], f16BitsToNumber(b))) t.fail(`F16 ${b}`);
    if (!Object.is(bf16[b], bf16BitsToNumber(b))) t.fail(`BF16 ${b}`);
  }
  const f64 = new Float64Array([Math.PI, -1e-310, Infinity]);
  const b64 = new Uint8Array(3 + f64.byteLength);
  b64.set(new Uint8Array(f64.buffer), 3);
  t.deepEqual(decodeFloats('F64', b64.subarray(3)), f64);
  t.deepEqual(decodeFloats('F32', new Uint8Array(new Float32Array([0.1, -2]).buffer)), new Float64Array([Math.fround(0.1), -2]));
  t.throws(() => decodeFloats('F32', new Uint8Array(6)), { instanceOf: RangeError });
});

// ---- writer round trip ---------------------------------------------------------------------

const edge = new Float64Array([0, -0, 1, -1.5, 0.1, 65504, 65520, 1e6, -1e6, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 2 ** -14, Infinity, -Infinity, NaN]);

test('writer round trip: every dtype, header padded, offsets contiguous, metadata kept', async (t) => {
  const path = join(tmp.dir, 'roundtrip.safetensors');
  const f64 = Float64Array.from({ length: 12 }, (_, i) => Math.sin(i) * 1e3);
  const raw16 = new Uint16Array([0x3c00, 0x7c00, 0x0001, 0xfbff]);
  await writeSafetensors(
    path,
    [
      { name: 'a.f64', dtype: 'F64', shape: [3, 4], data: f64 },
      { name: 'b.f32', dtype: 'F32', shape: [4, 4], data: Float64Array.from({ length: 16 }, (_, i) => edge[i]) },
      { name: 'c.f16', dtype: 'F16', shape: [16], data: edge },
      { name: 'd.bf16', dtype: 'BF16', shape: [2, 8], data: edge },
      { name: 'e.f16raw', dtype: 'F16', shape: [2, 2], data: raw16 },
      { name: 'f.f32', dtype: 'F32', shape: [2], data: new Float32Array([1.25, -3]) },
    ],
    { format: 'pt' },
  );
  const bytes = await readFile(path);
  const headerLen = Number(bytes.readBigUInt64LE(0));
  t.is(headerLen % 8, 0);
  const headerText = bytes.subarray(8, 8 + headerLen).toString('utf8');
  t.regex(headerText, /^\{.*\} {0,7}$/s); // JSON, then at most 7 spaces of padding
  t.notThrows(() => JSON.parse(headerText));
  const file = await parse(path);
  t.deepEqual(file.metadata, Object.assign(Object.create(null), { format: 'pt' }));
  t.deepEqual([...file.tensors.keys()], ['a.f64', 'b.f32', 'c.f16', 'd.bf16', 'e.f16raw', 'f.f32']);
  let expectStart = 8 + headerLen;
  for (const info of file.tensors.values()) {
    t.is(info.start, expectStart, `${info.name} contiguous`);
    expectStart = info.end;
  }
  t.is(expectStart, bytes.length);

  const src = await FileByteSource.open(path);
  try {
    const read = async (name: string) => {
      const info = { ...file.tensors.get(name)!, source: src as ByteSource };
      return decodeFloats(requireFloatTensor(info), await src.read(info.start, info.end));
    };
    t.deepEqual(await read('a.f64'), f64);
    t.deepEqual(await read('b.f32'), Float64Array.from(edge, Math.fround));
    t.deepEqual(await read('c.f16'), Float64Array.from(edge, (x) => f16BitsToNumber(float64ToF16Bits(x))));
    t.deepEqual(await read('d.bf16'), Float64Array.from(edge, (x) => bf16BitsToNumber(float64ToBF16Bits(x))));
    t.deepEqual(await read('e.f16raw'), new Float64Array([1, Infinity, 2 ** -24, -65504]));
    t.deepEqual(await read('f.f32'), new Float64Array([1.25, -3]));
    // Spot-check the F16 edge values themselves, not only consistency with the encoder.
    t.deepEqual([...(await read('c.f16'))].slice(5, 12), [65504, Infinity, Infinity, -Infinity, 2 ** -24, 0, 2 * 2 ** -24]);
  } finally {
    await src.close();
  }
  await t.throwsAsync(readFile(`${path}.tmp`), { code: 'ENOENT' });
});

test('writer rejects data whose length does not match the shape', async (t) => {
  const err = await t.throwsAsync(
    writeSafetensors(join(tmp.dir, 'bad.safetensors'), [{ name: 'w', dtype: 'F32', shape: [2, 3], data: new Float32Array(5) }]),
    { instanceOf: RangeError },
  );
  t.is(err?.message, 'writeSafetensors: tensor w: shape [2, 3] has 6 elements, data has 5');
});

// ---- header errors -------------------------------------------------------------------

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

test('file shorter than 8 bytes', async (t) => {
  await formatError(t, await fileWith(new Uint8Array([1, 2, 3, 4])), 'not a safetensors file (too short)');
});

test('a text file is not a safetensors file', async (t) => {
  const text = 'hello, this is not a model\n';
  const len = new DataView(new TextEncoder().encode(text).buffer).getBigUint64(0, true);
  await formatError(t, await fileWith(text), `not a safetensors file (header length ${len} exceeds file size ${text.length})`);
});

test('header length larger than the file', async (t) => {
  const bytes = rawFile({ w: f32([2], 0, 8) }, 8);
  new DataView(bytes.buffer).setBigUint64(0, 1000n, true);
  await formatError(t, await fileWith(bytes), `not a safetensors file (header length 1000 exceeds file size ${bytes.length})`);
});

test('header length above the 100 MB cap', async (t) => {
  const path = await fileWith(rawFile('{}'));
  const fh = await open(path, 'r+');
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, 100_000_001n, true);
  await fh.write(len, 0, 8, 0);
  await fh.close();
  await truncate(path, 100_000_100); // sparse: costs no disk
  await formatError(t, path, 'header length 100000001 exceeds the 100000000-byte cap');
});

test('header that is not JSON, not an object, or not UTF-8', async (t) => {
  for (const header of ['{"w": {"dtype": "F32",', '[1, 2]', 'null']) {
    await formatError(t, await fileWith(rawFile(header)), 'not a safetensors file (header is not valid JSON)');
  }
  const bad = rawFile('{"\u00e9": 1}');
  bad[10] = 0xff; // break the UTF-8 sequence
  await formatError(t, await fileWith(bad), 'not a safetensors file (header is not valid JSON)');
});

test('truncated file', async (t) => {
  const path = join(tmp.dir, 'cut.safetensors');
  await writeSafetensors(path, [
    { name: 'a', dtype: 'F32', shape: [4, 4], data: new Float32Array(16) },
    { name: 'b', dtype: 'F32', shape: [4, 4], data: new Float32Array(16) },
  ]);
  const size = (await readFile(path)).length;
  await truncate(path, size - 10);
  await formatError(t, path, 'truncated: the header describes 128 data bytes but only 118 follow it');
});

test('data_offsets outside the data section', async (t) => {
  const path = await fileWith(rawFile({ a: f32([2], 0, 8), b: f32([2], 100, 108) }, 16));
  await formatError(t, path, 'tensor b: data_offsets [100, 108] lie outside the data section (16 bytes)');
});

test('overlapping tensors name both', async (t) => {
  const path = await fileWith(rawFile({ a: f32([4], 0, 16), b: f32([4], 8, 24) }, 24));
  await formatError(t, path, 'tensors a [0, 16] and b [8, 24] overlap');
});

test('shape × dtype size must equal the byte length', async (t) => {
  const path = await fileWith(rawFile({ w: f32([2, 3], 0, 20) }, 24));
  await formatError(t, path, 'tensor w: shape [2, 3] × F32 needs 24 bytes but data_offsets [0, 20] hold 20');
});

test('begin after end', async (t) => {
  await formatError(t, await fileWith(rawFile({ w: f32([2], 16, 8) }, 16)), 'tensor w: data_offsets [16, 8] begin after end');
});

test('entries without valid dtype, shape or data_offsets, and unknown dtypes', async (t) => {
  const cases: Array<[unknown, string]> = [
    [{ w: { shape: [1], data_offsets: [0, 4] } }, 'tensor w: missing or invalid dtype'],
    [{ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 'tensor w: missing or invalid shape'],
    [{ w: { dtype: 'F32', shape: [1] } }, 'tensor w: missing or invalid data_offsets'],
    [{ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4.5] } }, 'tensor w: missing or invalid data_offsets'],
    [{ w: 7 }, 'tensor w: header entry is not an object'],
    [{ w: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, 'tensor w: unknown dtype "F128"'],
    [{ __metadata__: { format: 1 } }, '__metadata__ value for "format" is not a string'],
  ];
  for (const [header, message] of cases) await formatError(t, await fileWith(rawFile(header, 16)), message);
});

test('__metadata__ is metadata, scalars and empty tensors are fine', async (t) => {
  const header = { __metadata__: { format: 'pt' }, s: f32([], 0, 4), e: f32([0, 8], 4, 4), w: f32([1], 4, 8) };
  const file = await parse(await fileWith(rawFile(header, 8)));
  t.deepEqual([...file.tensors.keys()], ['s', 'e', 'w']);
  t.is(file.metadata?.format, 'pt');
  const len = JSON.stringify(header).length;
  t.like(file.tensors.get('w'), { dtype: 'F32', shape: [1], start: 8 + len + 4, end: 8 + len + 8 });
});

test('unsupported dtype is named with its tensor', async (t) => {
  const path = await fileWith(rawFile({ 'model.q.weight': { dtype: 'I8', shape: [2, 2], data_offsets: [0, 4] } }, 4));
  const info = (await parse(path)).tensors.get('model.q.weight')!;
  const err = t.throws(() => requireFloatTensor(info), { instanceOf: InputError });
  t.is(err?.message, `${path}: tensor model.q.weight has unsupported dtype I8 (supported: F32, F16, BF16, F64)`);
});

// ---- row reads -----------------------------------------------------------------------

/** Counts read() calls, so coalescing is visible. */
class CountingSource implements ByteSource {
  calls: Array<[number, number]> = [];
  constructor(private readonly inner: ByteSource) {}
  get name() {
    return this.inner.name;
  }
  get size() {
    return this.inner.size;
  }
  get bytesRead() {
    return this.inner.bytesRead;
  }
  read(start: number, end: number, into?: Uint8Array) {
    this.calls.push([start, end]);
    return this.inner.read(start, end, into);
  }
  close() {
    return this.inner.close();
  }
}

async function matrixSource(rows: number, cols: number) {
  const path = join(tmp.dir, `m${seq++}.safetensors`);
  const data = Float32Array.from({ length: rows * cols }, (_, i) => i);
  await writeSafetensors(path, [{ name: 'm', dtype: 'F32', shape: [rows, cols], data }, { name: 'v', dtype: 'F32', shape: [cols], data: data.subarray(0, cols) }]);
  const src = new CountingSource(await FileByteSource.open(path));
  const file = await readSafetensorsHeader(src);
  src.calls = [];
  const before = src.bytesRead;
  return { src, m: file.tensors.get('m')!, v: file.tensors.get('v')!, delta: () => src.bytesRead - before };
}

test('readRows reads one range', async (t) => {
  const { src, m, delta } = await matrixSource(10, 3);
  try {
    t.deepEqual(decodeFloats('F32', await readRows(m, 2, 5)), Float64Array.from({ length: 9 }, (_, i) => 6 + i));
    t.is(src.calls.length, 1);
    t.is(delta(), 3 * 3 * 4);
    t.is((await readRows(m, 10, 10)).length, 0);
    await t.throwsAsync(readRows(m, 0, 11), { instanceOf: RangeError, message: 'tensor m: row 11 outside [0, 10)' });
  } finally {
    await src.close();
  }
});

test('readRowList reads each distinct row once and coalesces adjacent rows', async (t) => {
  const { src, m, delta } = await matrixSource(100, 8);
  try {
    const rows = [7, 3, 4, 5, 5, 3, 50, 99, 98, 7, 0];
    const got = await readRowList(m, rows);
    const distinct = [0, 3, 4, 5, 7, 50, 98, 99];
    t.deepEqual([...got.keys()], distinct);
    for (const r of distinct) t.deepEqual(decodeFloats('F32', got.get(r)!), Float64Array.from({ length: 8 }, (_, i) => r * 8 + i), `row ${r}`);
    t.is(delta(), distinct.length * 8 * 4);
    // Runs: {0}, {3,4,5}, {7}, {50}, {98,99}.
    t.is(src.calls.length, 5);
    t.deepEqual(src.calls.map(([s, e]) => (e - s) / 32), [1, 3, 1, 1, 2]);
    t.is((await readRowList(m, [])).size, 0);
  } finally {
    await src.close();
  }
});

test('row reads validate rank and indices', async (t) => {
  const { src, m, v } = await matrixSource(4, 2);
  try {
    await t.throwsAsync(readRowList(v, [0]), { instanceOf: InputError, message: `${src.name}: tensor v is not 2-D (shape [2])` });
    await t.throwsAsync(readRowList(m, [1, 4]), { instanceOf: RangeError, message: 'tensor m: row 4 outside [0, 4)' });
    await t.throwsAsync(readRowList(m, [1.5]), { instanceOf: RangeError });
    await t.throwsAsync(readRows(m, 3, 1), { instanceOf: RangeError });
  } finally {
    await src.close();
  }
});

test('header reading works on an in-memory source and reads only the header', async (t) => {
  const bytes = rawFile({ w: f32([1000], 0, 4000) }, 4000);
  const src = new MemoryByteSource('mem', bytes);
  const file = await readSafetensorsHeader(src);
  t.is(file.tensors.get('w')!.end, bytes.length);
  t.is(src.bytesRead, bytes.length - 4000);
});
