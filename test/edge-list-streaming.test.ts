import test from 'ava';
import fc from 'fast-check';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mfaOfEdgeStream, mfaOfGroups, nfdOfEdgeStream, nfdOfGroups } from '../coordinator/analysis/edge-analysis.js';
import { mfaParams } from '../coordinator/cli/flags.js';
import { withEdgeStream } from '../coordinator/cli/read-edges.js';
import { groupBySource } from '../worker/plan/edge-groups.js';
import { RangePlanner } from '../coordinator/plan/range-planner.js';
import { groupRanges, groupTasks } from '../worker/plan/shard-plan.js';
import { groupEdgeStream } from '../coordinator/plan/streamed-groups.js';
import type { MfaParams, ShardTask } from '../proto/shard.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { DEFAULT_CHUNK_BYTES, edgesFromColumns, edgesFromRows, type EdgeList, type EdgeStream } from '../worker/io/edge-list.js';
import { parseCsvNumber } from '../worker/io/csv-line.js';
import { npyEdgeBytes, readNpyEdges } from '../worker/io/npy.js';
import { lcg } from '../worker/kernel/lcg.js';
import { runCli } from './helpers/run-cli.js';
import { conformanceDir, readJson } from './helpers/shared.js';
import { makeTmpDir } from './helpers/tmp.js';

const cases = join(conformanceDir, 'cases');
const inProcess = new InProcessBackend();
const params: MfaParams = readJson(join(cases, 'heterogeneous', 'expected.json')).params;
const nfdParams = { threshold: 200, decimals: 0 };
let T = '';
let cleanup = async () => {};

test.before(async () => {
  ({ dir: T, cleanup } = await makeTmpDir('neuromfa-edge-streaming-'));
});
test.after.always(() => cleanup());

/** A permutation of the edges (node order and per-node order both change). */
function reorder(e: EdgeList, order: ArrayLike<number>): EdgeList {
  const pick = (a: Float64Array) => Float64Array.from(order, (i) => a[i * e.stride]);
  return edgesFromColumns(pick(e.src), pick(e.dst), pick(e.w));
}

function shuffledOrder(n: number, seed: number): Uint32Array {
  const order = Uint32Array.from({ length: n }, (_, i) => i);
  const rand = lcg(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

const rowsOf = (e: EdgeList) => Float64Array.from({ length: 3 * e.count }, (_, k) => [e.src, e.dst, e.w][k % 3][Math.floor(k / 3) * e.stride]);

/** The bytes np.save writes for np.asfortranarray(rows): the src column, then dst, then w. */
function fortranNpyBytes(e: EdgeList): Uint8Array {
  const c = npyEdgeBytes(rowsOf(e));
  const header = Buffer.from(c.subarray(10, c.length - e.count * 24)).toString('latin1').replace("'fortran_order': False", "'fortran_order': True ");
  const cols = new Float64Array(3 * e.count);
  for (let i = 0; i < e.count; i++) [cols[i], cols[e.count + i], cols[2 * e.count + i]] = [e.src[i * e.stride], e.dst[i * e.stride], e.w[i * e.stride]];
  return Buffer.concat([Buffer.from(c.subarray(0, 10)), Buffer.from(header, 'latin1'), Buffer.from(cols.buffer)]);
}

const csvOf = (e: EdgeList, header = true) => (header ? 'src,dst,weight\n' : '') + Array.from({ length: e.count }, (_, i) => `${e.src[i * e.stride]},${e.dst[i * e.stride]},${e.w[i * e.stride]}\n`).join('');

/** A task's input as plain numbers: its offsets and its weights, whatever the stride. */
function taskEdges(task: ShardTask) {
  if (task.input.kind !== 'groups') throw new Error('a groups task');
  const { offsets, weights, stride } = task.input;
  return { id: task.id, offsets: Array.from(offsets), weights: Array.from({ length: offsets[offsets.length - 1] }, (_, e) => weights[e * stride]) };
}

async function streamedTasks(path: string, shards: number, chunkBytes: number) {
  return withEdgeStream(
    path,
    async (stream) => {
      const started: number[] = [];
      const { groups, tasks } = await groupEdgeStream(stream, shards, (g, r, first) => groupTasks(g, r, 'mfa', params, first), (t) => started.push(t.id));
      return { nodes: Array.from(groups.nodes), tasks: tasks.map(taskEdges), started };
    },
    chunkBytes,
  );
}

function heldTasks(e: EdgeList, shards: number) {
  const g = groupBySource(e);
  return { nodes: Array.from(g.nodes), tasks: groupTasks(g, groupRanges(g, shards), 'mfa', params).map(taskEdges) };
}

/** The same edges as the files a user may hold: every layout the readers take. */
async function layouts(name: string, e: EdgeList): Promise<Record<string, string>> {
  const sortedOrder = Uint32Array.from({ length: e.count }, (_, i) => i).sort((a, b) => e.src[a * e.stride] - e.src[b * e.stride] || a - b);
  const sorted = reorder(e, sortedOrder);
  // Sorted but for its last edge, which belongs to the first node: shards start on the guess of a sorted file, then are dropped.
  const almost = reorder(e, [...sortedOrder.subarray(1), sortedOrder[0]]);
  const shuffled = reorder(e, shuffledOrder(e.count, 7));
  const files: Record<string, [string, Uint8Array | string]> = {
    'sorted .npy': [`${name}-sorted.npy`, npyEdgeBytes(rowsOf(sorted))],
    'shuffled .npy': [`${name}-shuffled.npy`, npyEdgeBytes(rowsOf(shuffled))],
    'sorted but the last edge .npy': [`${name}-almost.npy`, npyEdgeBytes(rowsOf(almost))],
    'Fortran-order sorted .npy': [`${name}-fortran.npy`, fortranNpyBytes(sorted)],
    'Fortran-order shuffled .npy': [`${name}-fortran-shuffled.npy`, fortranNpyBytes(shuffled)],
    'sorted CSV': [`${name}-sorted.csv`, csvOf(sorted)],
    'shuffled CSV': [`${name}-shuffled.csv`, csvOf(shuffled, false)],
  };
  const out: Record<string, string> = {};
  for (const [label, [file, bytes]] of Object.entries(files)) {
    out[label] = join(T, file);
    await writeFile(out[label], bytes);
  }
  return out;
}

for (const name of ['heterogeneous', 'sparse-degrees']) {
  test(`${name}: every file layout, read in chunks much smaller than the file, gives groupBySource's shard tasks exactly`, async (t) => {
    const edges = await readNpyEdges(join(cases, name, 'edges.npy'));
    const files = await layouts(name, edges);
    for (const [label, path] of Object.entries(files)) {
      // The groups of the same edges in the same file order, held whole as before streaming.
      const held = path.endsWith('.csv') ? null : await readNpyEdges(path);
      for (const [shards, chunkBytes] of [
        [1, 24 * 7],
        [5, 24 * 64],
        [9, 1000],
      ]) {
        const got = await streamedTasks(path, shards, chunkBytes);
        const want = heldTasks(held ?? (await streamedEdges(path)), shards);
        t.deepEqual(got.nodes, want.nodes, `${label}: nodes`);
        t.deepEqual(got.tasks, want.tasks, `${label}, ${shards} shards, ${chunkBytes}-byte chunks: shard tasks`);
        t.deepEqual([...new Set(got.started)].sort((a, b) => a - b), want.tasks.map((x) => x.id), `${label}: every shard started`);
      }
    }
  });
}

/** A CSV's edges in file order, for the held reference (the CSV reader parses what npy stores as bytes). */
async function streamedEdges(path: string): Promise<EdgeList> {
  return withEdgeStream(path, async (stream) => {
    const rows: number[] = [];
    await stream.scan((b) => {
      for (let i = 0; i < b.count; i++) rows.push(b.src[i * b.stride], b.dst[i * b.stride], b.w[i * b.stride]);
    });
    return edgesFromRows(Float64Array.from(rows));
  });
}

test('a sorted .npy starts shards while it is still being read: shard 0 before the last block', async (t) => {
  const edges = await readNpyEdges(join(cases, 'heterogeneous', 'edges.npy'));
  const path = join(T, 'sorted-early.npy');
  await writeFile(path, npyEdgeBytes(rowsOf(edges)));
  const events: string[] = [];
  await withEdgeStream(
    path,
    async (stream) => {
      const scan = stream.scan.bind(stream);
      stream.scan = (onBlock) => scan((b) => (events.push(`block ${b.first}`), onBlock(b)));
      await groupEdgeStream(stream, 4, (g, r, first) => groupTasks(g, r, 'mfa', params, first), (task) => events.push(`shard ${task.id}`));
    },
    24 * 1000,
  );
  const blocks = Math.ceil(edges.count / 1000);
  t.is(events.filter((e) => e.startsWith('block')).length, blocks, 'one pass');
  t.true(events.indexOf('shard 0') < events.indexOf(`block ${(blocks - 1) * 1000}`), events.join(', '));
  t.deepEqual(events.filter((e) => e.startsWith('shard')), ['shard 0', 'shard 1', 'shard 2', 'shard 3']);
});

test('mfa and nfd of a streamed file equal the held edge list bit for bit (in-process and 3 layouts)', async (t) => {
  const edges = await readNpyEdges(join(cases, 'sparse-degrees', 'edges.npy'));
  const files = await layouts('numbers', edges);
  for (const label of ['sorted .npy', 'shuffled CSV', 'Fortran-order shuffled .npy']) {
    const path = files[label];
    const held = path.endsWith('.csv') ? await streamedEdges(path) : await readNpyEdges(path);
    const a = await withEdgeStream(path, (s) => mfaOfEdgeStream(s, params, inProcess, 3), 24 * 10);
    const b = await mfaOfGroups(groupBySource(held), params, inProcess, 3);
    t.deepEqual(a, b, `${label}: mfa`);
    const c = await withEdgeStream(path, (s) => nfdOfEdgeStream(s, nfdParams, inProcess, 3), 24 * 10);
    const d = await nfdOfGroups(groupBySource(held), nfdParams, inProcess, 3);
    t.deepEqual(c, d, `${label}: nfd`);
  }
});

test('node ids a counting array cannot hold (huge, negative) are grouped as groupBySource groups them', async (t) => {
  const src = Float64Array.of(2 ** 40, 5, -3, 5, 2 ** 40, -3, 7, 5);
  const e = edgesFromColumns(src, new Float64Array(src.length).fill(1), Float64Array.from(src, (_, i) => 0.01 * (i + 1)));
  for (const [name, ids] of [
    ['huge', src],
    ['negative', Float64Array.from(src, (s) => (s === 2 ** 40 ? 9 : s))],
  ] as const) {
    const path = join(T, `ids-${name}.npy`);
    const edges = edgesFromColumns(ids, e.dst, e.w);
    await writeFile(path, npyEdgeBytes(rowsOf(edges)));
    t.deepEqual(await streamedTasks(path, 2, 48), { ...heldTasks(edges, 2), started: [0, 1] }, name);
  }
});

test('RangePlanner fed node starts in any pieces gives groupRanges exactly', (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 200 }), fc.integer({ min: 1, max: 40 }), fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1 }), (degrees, count, pieces) => {
      const offsets = new Uint32Array(degrees.length + 1);
      degrees.forEach((d, i) => (offsets[i + 1] = offsets[i] + d));
      const E = offsets[degrees.length];
      const want = groupRanges({ nodes: new Float64Array(degrees.length), offsets, weights: new Float64Array(E), stride: 1 }, count);
      const planner = new RangePlanner(E, count);
      const got: Array<[number, number]> = [];
      let known = 0;
      for (let p = 0; known < degrees.length; p++) {
        known = Math.min(degrees.length, known + pieces[p % pieces.length]);
        got.push(...planner.next(offsets, known, false));
      }
      got.push(...planner.next(offsets, known, true));
      t.deepEqual(got, want);
    }),
    { seed: 9, numRuns: 300 },
  );
});

/** An edge list served from memory, a different one on each pass: a file that changes while it is read. */
function changingStream(versions: EdgeList[], maxEdges: number): EdgeStream {
  let pass = 0;
  return {
    path: 'changing.csv',
    declaredCount: undefined,
    maxEdges,
    async scan(onBlock) {
      const e = versions[Math.min(pass++, versions.length - 1)];
      for (let first = 0; first < e.count; first += 4) {
        const n = Math.min(4, e.count - first);
        const at = first * e.stride;
        onBlock({ first, count: n, stride: e.stride, src: e.src.subarray(at), dst: e.dst.subarray(at), w: e.w.subarray(at) });
      }
      return e.count;
    },
    async close() {},
  };
}

test('a file that changes between the two passes is refused, never misread', async (t) => {
  const col = (...v: number[]) => Float64Array.from(v);
  const edges = (...src: number[]) => edgesFromColumns(col(...src), new Float64Array(src.length), new Float64Array(src.length).fill(0.5));
  const before = edges(3, 1, 3, 2, 1, 3, 2, 2, 1, 3);
  const moved = edges(3, 1, 3, 2, 1, 3, 2, 2, 1, 1);
  const longer = edges(3, 1, 3, 2, 1, 3, 2, 2, 1, 3, 3);
  const sorted = edges(1, 1, 1, 2, 2, 2, 3, 3, 3, 3);
  const sortedMoved = edges(1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  for (const [label, versions, maxEdges] of [
    ['unsorted, an edge moved to another node', [before, moved], 11],
    ['unsorted, an edge added', [before, longer], 11],
    // A sorted CSV takes two passes only where its weights cannot be reserved up front.
    ['sorted, too large to reserve, an edge moved', [sorted, sortedMoved], 2 ** 50],
  ] as const) {
    const err = await t.throwsAsync(groupEdgeStream(changingStream([...versions], maxEdges), 2, (g, r, f) => groupTasks(g, r, 'mfa', params, f), () => {}));
    t.is(err?.message, 'changing.csv: the file changed while it was read', label);
  }
});

test('a sorted edge list whose weights cannot be reserved up front is grouped as groupBySource groups it', async (t) => {
  const edges = await readNpyEdges(join(cases, 'sparse-degrees', 'edges.npy'));
  const sorted = reorder(edges, Uint32Array.from({ length: edges.count }, (_, i) => i).sort((a, b) => edges.src[a * edges.stride] - edges.src[b * edges.stride] || a - b));
  const started: number[] = [];
  // 2^50 edges cannot be reserved: one pass finds the runs, a second places the weights.
  const { groups, tasks } = await groupEdgeStream(changingStream([sorted], 2 ** 50), 3, (g, r, f) => groupTasks(g, r, 'mfa', params, f), (task) => started.push(task.id));
  t.deepEqual({ nodes: Array.from(groups.nodes), tasks: tasks.map(taskEdges), started }, { ...heldTasks(sorted, 3), started: [0, 1, 2] });
});

// ---- errors through the CLI: one line, naming the file (and the edge or line), exit 3 ----

async function cliError(t: import('ava').ExecutionContext, args: string[], message: string): Promise<void> {
  const r = await runCli(args);
  t.is(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
  t.is(r.stderr, `neuromfa: ${message}\n`);
  t.is(r.stdout, '');
}

/** A .npy with any header text and version (the length field and padding as NumPy writes them). */
function npyWithHeader(dict: string, data: Uint8Array, version: [number, number] = [1, 0]): Uint8Array {
  const wide = version[0] >= 2;
  const pre = wide ? 12 : 10;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const header = Buffer.from(dict.padEnd(total - pre - 1, ' ') + '\n', 'latin1');
  const out = new Uint8Array(total + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, ...version], 0);
  const view = new DataView(out.buffer);
  if (wide) view.setUint32(8, header.length, true);
  else view.setUint16(8, header.length, true);
  out.set(header, pre);
  out.set(data, total);
  return out;
}

const goodRows = () => {
  const rows = new Float64Array(30 * 12 * 3);
  for (let i = 0, k = 0; i < 30; i++) for (let j = 0; j < 12; j++) rows.set([i, 100 + j, 1 / (2 + j + i / 7)], 3 * k++);
  return rows;
};

test('.npy headers NumPy refuses are refused (issue #10), one line naming the file', async (t) => {
  const data = new Uint8Array(goodRows().buffer);
  const E = data.length / 24;
  const cases: Array<[string, Uint8Array, string]> = [
    ['duplicate-descr', npyWithHeader(`{'descr': '<f8', 'fortran_order': False, 'shape': (${E}, 3), 'descr': '<f4', }`, data), "not a valid .npy header: key 'descr' given twice"],
    ['float-shape', npyWithHeader(`{'descr': '<f8', 'fortran_order': False, 'shape': (${E}.0, 3), }`, data), `not a valid .npy header: shape (${E}.0, 3) is not a tuple of non-negative integers`],
    ['negative-shape', npyWithHeader(`{'descr': '<f8', 'fortran_order': False, 'shape': (-1, 3), }`, data), 'not a valid .npy header: shape (-1, 3) has a negative dimension'],
    ['bool-shape', npyWithHeader(`{'descr': '<f8', 'fortran_order': False, 'shape': (True, 3), }`, data), 'not a valid .npy header: shape (True, 3) is not a tuple of non-negative integers'],
    ['int-shape', npyWithHeader(`{'descr': '<f8', 'fortran_order': False, 'shape': (${E}), }`, data), `not a valid .npy header: shape (${E}) is not a tuple of non-negative integers`],
    ['hex-shape', npyWithHeader(`{'descr': '<f8', 'fortran_order': False, 'shape': (0x10, 3), }`, data), 'not a valid .npy header: shape (0x10, 3) is not a tuple of non-negative integers'],
    ['version-0', npyWithHeader(`{'descr': '<f8', 'fortran_order': False, 'shape': (${E}, 3), }`, data, [0, 0]), 'unsupported .npy format version (0, 0); NumPy writes (1, 0), (2, 0) and (3, 0)'],
    ['version-1-1', npyWithHeader(`{'descr': '<f8', 'fortran_order': False, 'shape': (${E}, 3), }`, data, [1, 1]), 'unsupported .npy format version (1, 1); NumPy writes (1, 0), (2, 0) and (3, 0)'],
    ['extra-key', npyWithHeader(`{'descr': '<f8', 'fortran_order': False, 'shape': (${E}, 3), 'x': 1}`, data), "not a valid .npy header: unknown key 'x' (NumPy writes exactly 'descr', 'fortran_order' and 'shape')"],
    ['missing-key', npyWithHeader(`{'descr': '<f8', 'shape': (${E}, 3)}`, data), "not a valid .npy header: missing key 'fortran_order'"],
    ['fortran-int', npyWithHeader(`{'descr': '<f8', 'fortran_order': 0, 'shape': (${E}, 3)}`, data), 'not a valid .npy header: fortran_order is 0, not True or False'],
    ['not-a-dict', npyWithHeader(`['descr', '<f8']`, data), "not a valid .npy header: expected '{' at offset 0"],
    ['after-dict', npyWithHeader(`{'descr': '<f8', 'fortran_order': False, 'shape': (${E}, 3)} x`, data), 'not a valid .npy header: unexpected text after the dict at offset 60'],
    ['unterminated', npyWithHeader(`{'descr': '<f8, 'fortran_order': False, 'shape': (${E}, 3)}`, data), 'not a valid .npy header: expected \',\' or \'}\' at offset 17'],
    ['nested', npyWithHeader(`{'descr': ${'('.repeat(40)}, 'fortran_order': False, 'shape': (${E}, 3)}`, data), 'not a valid .npy header: values nested deeper than 16'],
  ];
  for (const [name, bytes, message] of cases) {
    const path = join(T, `${name}.npy`);
    await writeFile(path, bytes);
    await cliError(t, ['mfa', path], `${path}: ${message}`);
  }
  // A header longer than NumPy's 10000-byte limit (format 2.0 can state up to 4 GiB).
  const long = join(T, 'long-header.npy');
  const bytes = npyWithHeader(`{'descr': '<f8', 'fortran_order': False, 'shape': (${E}, 3)}${' '.repeat(10000)}`, data, [2, 0]);
  await writeFile(long, bytes);
  await cliError(t, ['nfd', long], `${long}: .npy header of ${bytes.length - data.length - 12} bytes is longer than NumPy's limit of 10000`);
});

test('.npy headers NumPy writes are read: versions 1.0, 2.0 and 3.0, spacing and a trailing comma or none', async (t) => {
  const rows = goodRows();
  const data = new Uint8Array(rows.buffer);
  const want = await runCli(['mfa', await written('plain.npy', npyEdgeBytes(rows)), '--json', '--threads', '1']);
  t.is(want.code, 0, want.stderr);
  const E = rows.length / 3;
  for (const [name, bytes] of [
    ['v2.npy', npyWithHeader(`{'descr': '<f8', 'fortran_order': False, 'shape': (${E}, 3), }`, data, [2, 0])],
    ['v3.npy', npyWithHeader(`{"descr":"<f8","fortran_order":False,"shape":(${E},3)}`, data, [3, 0])],
    ['spaced.npy', npyWithHeader(`  {\n 'shape' : ( ${E} , 3 , ) ,'fortran_order':False,'descr':'<f8'}`, data)],
  ] as const) {
    const r = await runCli(['mfa', await written(name, bytes), '--json', '--threads', '1']);
    t.is(r.code, 0, `${name}: ${r.stderr}`);
    t.is(r.stdout, want.stdout, name);
  }
});

async function written(name: string, bytes: Uint8Array | string): Promise<string> {
  const path = join(T, name);
  await writeFile(path, bytes);
  return path;
}

test('a truncated .npy is a clear error, whatever the chunk size', async (t) => {
  const bytes = npyEdgeBytes(goodRows());
  const path = await written('truncated.npy', bytes.subarray(0, bytes.length - 100));
  const message = `${path}: truncated: shape (360, 3) needs 8640 data bytes, file has 8540`;
  await cliError(t, ['mfa', path], message);
  const err = await t.throwsAsync(withEdgeStream(path, (s) => mfaOfEdgeStream(s, params, inProcess, 2), 48));
  t.is(err?.message, message);
  const header = await written('header-only.npy', bytes.subarray(0, 40));
  await cliError(t, ['mfa', header], `${header}: .npy header runs past the end of the file`);
});

test('a non-finite or fractional node id names its edge, in any block and either order', async (t) => {
  const rows = goodRows();
  const E = rows.length / 3;
  const cases: Array<[string, number, number, string]> = [
    ['nan-src', 3 * 250, NaN, 'edge 250 has a non-finite node id (NaN, 110)'],
    ['inf-dst', 3 * 301 + 1, -Infinity, 'edge 301 has a non-finite node id (25, -Infinity)'],
    ['fraction-src', 3 * 7, 0.5, 'edge 7 has a non-integer node id (0.5, 107)'],
  ];
  for (const [name, at, value, message] of cases) {
    const bad = Float64Array.from(rows);
    bad[at] = value;
    const path = await written(`${name}.npy`, npyEdgeBytes(bad));
    await cliError(t, ['mfa', path], `${path}: ${message}`);
    const chunked = await t.throwsAsync(withEdgeStream(path, (s) => mfaOfEdgeStream(s, params, inProcess, 2), 24 * 16));
    t.is(chunked?.message, `${path}: ${message}`, `${name}, 16-edge chunks`);
    const fortran = await written(`${name}-fortran.npy`, fortranNpyBytes(edgesFromRows(bad)));
    const f = await t.throwsAsync(withEdgeStream(fortran, (s) => mfaOfEdgeStream(s, params, inProcess, 2), 24 * 16));
    t.is(f?.message, `${fortran}: ${message}`, `${name}, Fortran order`);
  }
  t.is(E, 360);
});

test('the first bad node id is named wherever it lies: the first edge, past where a file turns out unsorted, an unsorted or huge-id file', async (t) => {
  const rows = goodRows();
  const swap = (r: Float64Array, a: number, b: number) => {
    for (let c = 0; c < 3; c++) [r[3 * a + c], r[3 * b + c]] = [r[3 * b + c], r[3 * a + c]];
    return r;
  };
  const put = (r: Float64Array, ...cells: Array<[number, number]>) => {
    for (const [at, v] of cells) r[at] = v;
    return r;
  };
  const files: Array<[string, Float64Array]> = [
    ['first-src--inf', put(Float64Array.from(rows), [0, -Infinity])],
    ['first-dst-nan', put(Float64Array.from(rows), [1, NaN])],
    ['last-src-fraction', put(Float64Array.from(rows), [3 * 359, 29.5])],
    // Sources decrease at edge 100 (a node-0 edge moved there); a bad id 3 edges on, in the same block.
    ['unsorted-then-bad', put(swap(Float64Array.from(rows), 5, 100), [3 * 103 + 1, 0.25])],
    ['decrease-and-bad-at-once', put(swap(Float64Array.from(rows), 5, 100), [3 * 100 + 1, Infinity])],
    ['shuffled', put(swap(swap(Float64Array.from(rows), 0, 359), 40, 200), [3 * 300, NaN])],
    // Ids no counting array holds: the first pass still checks every block.
    ['huge-ids', put(Float64Array.from(rows), [0, 2 ** 40], [3 * 200 + 1, -0.5])],
  ];
  for (const [name, bad] of files) {
    const path = await written(`first-bad-${name}.npy`, npyEdgeBytes(bad));
    // The reference: the whole-file reader checks every id before anything else.
    const want = (await t.throwsAsync(readNpyEdges(path)))?.message;
    t.regex(want ?? '', /: edge \d+ has a non-(finite|integer) node id/, name);
    for (const chunkBytes of [24 * 7, 24 * 16, undefined]) {
      const err = await t.throwsAsync(withEdgeStream(path, (s) => groupEdgeStream(s, 3, (g, r, f) => groupTasks(g, r, 'mfa', params, f), () => {}), chunkBytes));
      t.is(err?.message, want, `${name}, ${chunkBytes ?? 'default'}-byte chunks`);
    }
    // The check is the caller's when it asks so: the reader hands the bad edge on.
    t.is(await withEdgeStream(path, (s) => s.scan(() => {}, { checkIds: false })), 360, name);
  }
});

test('CSV: only decimal numbers (issue #10: 0x10 is not 16), an empty field is an error naming its line', async (t) => {
  const good = '0,100,0.5\n';
  const cases: Array<[string, string, string]> = [
    ['hex', `src,dst,weight\n${good}0x10,101,0.25\n`, ':3: src "0x10" is not a decimal number (digits, an optional exponent, inf or nan) in "0x10,101,0.25"'],
    ['empty-weight', `${good}${good}1,2,\n`, ':3: empty weight field in "1,2,"'],
    ['empty-src', `${good} ,2,0.5\n`, ':2: empty src field in " ,2,0.5"'],
    ['binary', `${good}1,0b11,0.5\n`, ':2: dst "0b11" is not a decimal number (digits, an optional exponent, inf or nan) in "1,0b11,0.5"'],
    ['underscore', `${good}1,2,1_0\n`, ':2: weight "1_0" is not a decimal number (digits, an optional exponent, inf or nan) in "1,2,1_0"'],
    ['infinity-word', `${good}1,2,Infinityx\n`, ':2: weight "Infinityx" is not a decimal number (digits, an optional exponent, inf or nan) in "1,2,Infinityx"'],
    ['four-fields', `${good}1,2,3,4\n`, ':2: expected three numbers "src,dst,weight", got "1,2,3,4"'],
    ['two-fields', `${good}1,2\n`, ':2: expected three numbers "src,dst,weight", got "1,2"'],
    ['header-later', `${good}src,dst,weight\n`, ':2: src "src" is not a decimal number (digits, an optional exponent, inf or nan) in "src,dst,weight"'],
    ['half-header', `src,2,w\n${good}`, ':1: src "src" is not a decimal number (digits, an optional exponent, inf or nan) in "src,2,w"'],
    ['nan-id', `${good}${good}nan,2,0.5\n`, ':3: edge 2 has a non-finite node id (NaN, 2)'],
    ['fraction-id', `# a comment line is a header\n${good}1.5,2,0.5\n`, ':3: edge 1 has a non-integer node id (1.5, 2)'],
  ];
  for (const [name, text, message] of cases) {
    const path = await written(`${name}.csv`, text);
    await cliError(t, ['mfa', path], `${path}${message}`);
  }
  const long = await written('one-long-line.csv', '1'.repeat(70000));
  await cliError(t, ['mfa', long], `${long}:1: line longer than 65536 bytes`);
});

test('CSV numbers are the correctly rounded doubles Number() gives for the same decimal text', (t) => {
  const decimal = fc
    .tuple(fc.constantFrom('', '+', '-'), fc.stringMatching(/^[0-9]{0,20}$/), fc.option(fc.stringMatching(/^[0-9]{0,20}$/)), fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.integer({ min: 0, max: 400 }))))
    .map(([sign, int, frac, exp]) => `${sign}${int}${frac === null ? '' : `.${frac}`}${exp === null ? '' : `${exp[0]}${exp[1]}${exp[2]}`}`)
    .filter((s) => /[0-9]/.test(s.replace(/[eE].*$/, '')));
  fc.assert(
    fc.property(fc.oneof(decimal, fc.double().map(String), fc.double().map((x) => x.toExponential())), (text) => {
      t.true(Object.is(parseCsvNumber(text), Number(text)), text);
    }),
    { seed: 10, numRuns: 20000 },
  );
  for (const text of ['0x10', '0b11', '0o7', '1_0', '', '.', 'e5', '1e', '1e+', '--1', '+-1', ' 1', '1 ', 'Infinity1', 'in f', '١']) t.is(parseCsvNumber(text), undefined, JSON.stringify(text));
  for (const [text, value] of [['inf', Infinity], ['-INF', -Infinity], ['+Infinity', Infinity], ['nan', NaN], ['-NaN', NaN], ['-0', -0], ['9007199254740993', 9007199254740992], ['1e-400', 0], ['1e400', Infinity]] as const) {
    t.true(Object.is(parseCsvNumber(text), value), text);
  }
});

test('CSV: the numbers Python float reads — exponents, signs, bare points, inf and nan weights, CRLF, a BOM — as the same .npy', async (t) => {
  const rows = goodRows();
  const text = Array.from({ length: rows.length / 3 }, (_, i) => {
    const [s, d, w] = [rows[3 * i], rows[3 * i + 1], rows[3 * i + 2]];
    const forms = [`${s},${d},${w}`, `+${s}.,${d}.0, ${w.toExponential()}`, `${s}e0 ,\t${d}E+0,${w}`, `${s}.000,${d},${String(w).replace(/^0\./, '.')}`];
    return forms[i % forms.length];
  });
  // Non-finite weights are skipped and counted, as in a .npy.
  text.push('1,500,inf', '2,500,-Infinity', '3,500,NaN', '4,500,nan', '');
  const extra = Float64Array.of(1, 500, Infinity, 2, 500, -Infinity, 3, 500, NaN, 4, 500, NaN);
  const all = new Float64Array(rows.length + extra.length);
  all.set(rows);
  all.set(extra, rows.length);
  const csv = await written('forms.csv', '\ufeffsrc,dst,weight\r\n' + text.join('\r\n'));
  const npy = await written('forms.npy', npyEdgeBytes(all));
  const [a, b] = await Promise.all([runCli(['mfa', csv, '--json', '--threads', '1']), runCli(['mfa', npy, '--json', '--threads', '1'])]);
  t.is(a.code, 0, a.stderr);
  t.is(a.stdout, b.stdout);
  t.is(JSON.parse(a.stdout).stats.skippedNonFinite, 4);
});

test('mfa of a file of several read chunks through the CLI equals the held edge list', async (t) => {
  // 200,000 edges (4.8 MB): shards start while later chunks are read.
  const nodes = 2500;
  const rows = new Float64Array(nodes * 80 * 3);
  const rand = lcg(5);
  for (let i = 0, k = 0; i < nodes; i++) for (let j = 0; j < 80; j++) rows.set([i, nodes + ((i * 31 + j * 17) % 4000), (rand() - 0.5) * 0.05], 3 * k++);
  const path = await written('big.npy', npyEdgeBytes(rows));
  t.true(rows.byteLength > 4 * DEFAULT_CHUNK_BYTES);
  const r = await runCli(['mfa', path, '--json', '--threads', '2', '--shards', '4']);
  t.is(r.code, 0, r.stderr);
  const defaults = mfaParams({ threshold: '150', decimals: '0', minNeighbors: '10', q: '-3:3:0.1' });
  const held = await mfaOfGroups(groupBySource(await readNpyEdges(path)), defaults, inProcess, 4);
  const got = JSON.parse(r.stdout);
  for (const k of ['tau', 'alpha', 'f', 'alpha0', 'width', 'nodesSelected', 'radii'] as const) t.deepEqual(got[k], held.spectrum[k], k);
  t.deepEqual(got.stats.edges, held.stats.edges);
  t.is(got.stats.shards, 4);
});
