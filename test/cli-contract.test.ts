import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readNpyEdges } from '../worker/io/npy.js';
import { runCli, type CliResult } from './helpers/run-cli.js';
import { conformanceDir, firstMismatch, readJson, within } from './helpers/shared.js';
import { makeTmpDir } from './helpers/tmp.js';

/**
 * The CLI contract of issue 2, through the real binary: the JSON each command prints (keys
 * AND values, against ../shared/conformance), the files it writes, help and the demo.
 */

const cases = join(conformanceDir, 'cases');
const neox = join(conformanceDir, 'gptneox');
const series = join(conformanceDir, 'series', 'tiny-neox-f16');

let T = '';
let cleanup: () => Promise<void> = async () => undefined;
test.before(async () => {
  ({ dir: T, cleanup } = await makeTmpDir('neuromfa-cli-contract-'));
});
test.after.always(() => cleanup());

/** A successful --json run: exit 0, and the WHOLE of stdout is one JSON document. */
function okJson(t: ExecutionContext, r: CliResult): any {
  t.is(r.code, 0, r.stderr);
  t.false(/^\s+at /m.test(r.stderr), r.stderr);
  let parsed: unknown;
  t.notThrows(() => {
    parsed = JSON.parse(r.stdout);
  }, `stdout is only JSON: ${r.stdout.slice(0, 200)}`);
  return parsed;
}

const near = (t: ExecutionContext, actual: number, expected: number, what: string) => t.true(within(actual, expected), `${what}: ${actual} vs ${expected}`);
const allNear = (t: ExecutionContext, actual: number[], expected: number[], what: string) => t.is(firstMismatch(actual, expected), -1, what);

/** Tag-balanced markup whose root is <svg>: enough to call it well-formed XML here. */
function assertSvg(t: ExecutionContext, path: string): void {
  t.true(existsSync(path), `${path} exists`);
  const text = readFileSync(path, 'utf8').replace(/<\?xml[^>]*\?>/, '').replace(/<!--[\s\S]*?-->/g, '').trim();
  t.true(text.startsWith('<svg'), `${path} starts with <svg`);
  t.true(text.endsWith('</svg>'), `${path} ends with </svg>`);
  t.notRegex(text, /NaN|undefined|Infinity/, `${path} has no NaN/undefined coordinates`);
  const stack: string[] = [];
  for (const m of text.matchAll(/<(\/?)([A-Za-z][\w:.-]*)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g)) {
    const [, close, name, , selfClose] = m;
    if (selfClose) continue;
    if (!close) stack.push(name);
    else if (stack.pop() !== name) {
      t.fail(`${path}: </${name}> closes the wrong element`);
      return;
    }
  }
  t.deepEqual(stack, [], `${path}: every element is closed`);
  t.notRegex(text.replace(/<(?:[^>"']|"[^"]*"|'[^']*')*>/g, ''), /[<>]/, `${path}: no stray < or > in text`);
}

// ---------------------------------------------------------------- mfa, nfd

const MFA_KEYS = ['q', 'tau', 'alpha', 'f', 'alpha0', 'width', 'nodesSelected', 'radii', 'fit'];

function assertSpectrum(t: ExecutionContext, got: any, expected: any): void {
  for (const k of MFA_KEYS) t.true(k in got, `key ${k}`);
  t.deepEqual(Object.keys(got.fit).sort(), ['r2', 'stderr']);
  t.deepEqual(got.q, expected.params.q);
  allNear(t, got.tau, expected.tau, 'tau');
  allNear(t, got.alpha, expected.alpha, 'alpha');
  allNear(t, got.f, expected.f, 'f');
  near(t, got.alpha0, expected.alpha0, 'alpha0');
  near(t, got.width, expected.width, 'width');
  t.is(got.nodesSelected, expected.nodesSelected);
  t.deepEqual(got.radii, expected.radii);
  t.is(got.fit.r2.length, got.q.length);
  t.is(got.fit.stderr.length, got.q.length);
  t.true(got.fit.r2.every((r: number) => r >= 0 && r <= 1), 'r2 in [0, 1]');
  t.true(got.fit.stderr.every((s: number) => Number.isFinite(s) && s >= 0), 'stderr finite, non-negative');
}

test('mfa --json on a .npy and the same edges as CSV, with and without a header', async (t) => {
  const npy = join(cases, 'gaussian-init', 'edges.npy');
  const expected = readJson(join(cases, 'gaussian-init', 'expected.json'));
  const edges = await readNpyEdges(npy);
  let body = '';
  for (let e = 0, j = 0; e < edges.count; e++, j += edges.stride) body += `${edges.src[j]},${edges.dst[j]},${edges.w[j]}\n`; // String(x) round-trips a double
  const plain = join(T, 'gaussian.csv');
  const headed = join(T, 'gaussian-header.csv');
  await writeFile(plain, body);
  await writeFile(headed, `src,dst,weight\n${body}`);
  const [a, b, c] = (await Promise.all([npy, plain, headed].map((p) => runCli(['mfa', p, '--json', '--threads', '2'])))).map((r) => okJson(t, r));
  assertSpectrum(t, a, expected);
  t.is(a.stats?.edges, edges.count);
  // The CSV reads give the very same numbers, not just within tolerance.
  for (const other of [b, c]) for (const k of MFA_KEYS) t.deepEqual(other[k], a[k], `CSV ${k}`);
});

test('mfa --threshold 100 --decimals 1 matches the decimals-1 case', async (t) => {
  const expected = readJson(join(cases, 'decimals-1', 'expected.json'));
  t.is(expected.params.threshold, 100);
  t.is(expected.params.decimals, 1);
  const r = okJson(t, await runCli(['mfa', join(cases, 'decimals-1', 'edges.npy'), '--threshold', '100', '--decimals', '1', '--json', '--threads', '2']));
  assertSpectrum(t, r, expected);
});

test('mfa without --json prints a human summary, still exit 0', async (t) => {
  const r = await runCli(['mfa', join(cases, 'gaussian-init', 'edges.npy'), '--threads', '1']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /alpha0/);
  t.throws(() => JSON.parse(r.stdout));
});

test('nfd --json gives nodes and the reference values', async (t) => {
  const expected = readJson(join(cases, 'sparse-degrees', 'expected.json'));
  const r = okJson(t, await runCli(['nfd', join(cases, 'sparse-degrees', 'edges.npy'), '--json', '--threads', '2']));
  t.deepEqual(Object.keys(r).sort(), ['nodes', 'values']);
  t.is(r.values.length, expected.nfd.values.length);
  t.is(r.nodes.length, r.values.length);
  // Source nodes in increasing id: exactly the distinct sources of the edge list.
  const edges = await readNpyEdges(join(cases, 'sparse-degrees', 'edges.npy'));
  const sources = new Set<number>();
  for (let e = 0, j = 0; e < edges.count; e++, j += edges.stride) sources.add(edges.src[j]);
  t.deepEqual(r.nodes, [...sources].sort((x, y) => x - y));
  allNear(t, r.values, expected.nfd.values, 'nfd values');
  t.true(r.values.some((v: number) => v !== 0), 'not all zero');
});

// ---------------------------------------------------------------- nin

test('nin --sample 1 writes the reference edge list byte for byte; --plan prints the drawn sets', async (t) => {
  const model = join(neox, 'neox-f16-trained');
  const expected = readJson(join(model, 'expected.json'));
  const [plain, planned] = await Promise.all([
    runCli(['nin', model, '--sample', '1', '--out', join(T, 'e.npy')]),
    runCli(['nin', model, '--sample', '1', '--out', join(T, 'e-plan.npy'), '--plan']),
  ]);
  t.is(plain.code, 0, plain.stderr);
  const want = readFileSync(join(model, 'edges_sample1.npy'));
  t.true(readFileSync(join(T, 'e.npy')).equals(want), 'e.npy equals edges_sample1.npy');
  t.true(readFileSync(join(T, 'e-plan.npy')).equals(want), 'the --plan run writes the same file');
  const p = okJson(t, planned);
  t.deepEqual(p.plan, expected.samples['1'].plan);
  t.is(p.sample, 1);
  t.is(p.layout, 'gpt-neox');
  t.is(p.edges, (want.length - 128) / 24);
  t.false(readdirSync(T).some((f) => f.endsWith('.tmp')), 'no temporary left');
});

// ---------------------------------------------------------------- analyze

test('analyze --samples 0-1 --json --out: per-sample values, mean/std, stats and the report files', async (t) => {
  const model = join(neox, 'neox-f32-init');
  const expected = readJson(join(model, 'expected.json'));
  const out = join(T, 'r');
  const r = okJson(t, await runCli(['analyze', model, '--samples', '0-1', '--json', '--out', out, '--threads', '2']));
  t.is(r.layout, 'gpt-neox');
  t.deepEqual(
    r.samples.map((s: any) => s.sample),
    [0, 1],
  );
  for (const s of r.samples) {
    const want = expected.samples[String(s.sample)].expected;
    for (const k of ['sample', 'tau', 'alpha', 'f', 'alpha0', 'width', 'nodesSelected']) t.true(k in s, `samples[].${k}`);
    allNear(t, s.tau, want.tau, `tau of sample ${s.sample}`);
    allNear(t, s.alpha, want.alpha, `alpha of sample ${s.sample}`);
    allNear(t, s.f, want.f, `f of sample ${s.sample}`);
    near(t, s.alpha0, want.alpha0, `alpha0 of sample ${s.sample}`);
    near(t, s.width, want.width, `width of sample ${s.sample}`);
    t.is(s.nodesSelected, want.nodesSelected);
  }
  const a0 = [0, 1].map((s) => expected.samples[String(s)].expected.alpha0);
  const w = [0, 1].map((s) => expected.samples[String(s)].expected.width);
  const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length;
  const std = (v: number[]) => Math.sqrt(mean(v.map((x) => (x - mean(v)) ** 2))); // np.std: population
  near(t, r.mean.alpha0, mean(a0), 'mean alpha0');
  near(t, r.mean.width, mean(w), 'mean width');
  near(t, r.std.alpha0, std(a0), 'std alpha0');
  near(t, r.std.width, std(w), 'std width');

  const st = r.stats;
  for (const k of ['edges', 'bytesRead', 'fileBytes', 'seconds', 'skippedNonFinite']) t.is(typeof st[k], 'number', `stats.${k}`);
  const edgesOf = async (s: number) => (await readNpyEdges(join(model, `edges_sample${s}.npy`))).count;
  t.is(st.edges, (await edgesOf(0)) + (await edgesOf(1)));
  t.is(st.fileBytes, statSync(join(model, 'model.safetensors')).size);
  t.true(st.bytesRead > 0 && st.bytesRead < st.fileBytes, `bytesRead ${st.bytesRead} < fileBytes ${st.fileBytes}`);
  t.true(st.seconds > 0 && st.seconds < 60);
  t.is(st.skippedNonFinite, 0);

  // shards/ is the resume journal: finished shards, kept as they arrive.
  // Figures and tables are checked in report-figures.test.ts.
  t.deepEqual(readdirSync(out).sort(), ['report.html', 'report.json', 'samples.csv', 'shards', 'spectrum.png', 'spectrum.svg', 'spectrum.vl.json', 'tau.png', 'tau.svg', 'tau.vl.json']);
  const saved = readJson(join(out, 'report.json'));
  t.is(saved.layout, 'gpt-neox');
  t.deepEqual(saved.samples, r.samples, 'report.json holds what --json printed');
  assertSvg(t, join(out, 'spectrum.svg'));
  assertSvg(t, join(out, 'tau.svg'));
});

// ---------------------------------------------------------------- emergence

const STEPS = ['step0', 'step8', 'step64', 'step512'];

function assertCurve(t: ExecutionContext, r: any, labels: string[]): void {
  const expected = readJson(join(series, 'expected.json'));
  t.deepEqual(expected.samples, [0, 1, 2]);
  t.is(r.checkpoints.length, 4);
  r.checkpoints.forEach((c: any, i: number) => {
    const want = expected.steps[i];
    t.is(c.label, labels[i]);
    t.is(want.step, Number(STEPS[i].slice(4)));
    for (const key of ['alpha0', 'width']) {
      t.deepEqual(Object.keys(c[key]).sort(), ['mean', 'samples', 'std'], `${key} of ${c.label}`);
      t.deepEqual(c[key].samples, [0, 1, 2], `samples kept for ${key} of ${c.label}`);
      t.true(Number.isFinite(c[key].std) && c[key].std >= 0);
    }
    near(t, c.alpha0.mean, want.alpha0, `mean alpha0 of ${c.label}`);
    near(t, c.width.mean, want.width, `mean width of ${c.label}`);
    near(t, c.E, want.E, `E of ${c.label}`);
  });
  t.is(r.checkpoints[0].E, 0);
}

test('emergence over the tiny-neox-f16 series: E at every step, emergence.csv and .svg', async (t) => {
  const out = join(T, 'e');
  const labels = ['a', 'b', 'c', 'd'];
  const r = okJson(
    t,
    await runCli(['emergence', ...STEPS.map((s) => join(series, s)), '--samples', '0-2', '--labels', labels.join(','), '--json', '--out', out, '--threads', '2']),
  );
  assertCurve(t, r, labels);
  t.true(['emergence.csv', 'emergence.svg', 'report.json', 'report.html', 'samples.csv'].every((f) => readdirSync(out).includes(f)), readdirSync(out).join(' '));
  const csv = readFileSync(join(out, 'emergence.csv'), 'utf8').trimEnd().split('\n');
  t.is(csv.length, 5, 'a header and 4 rows');
  const header = csv[0].split(',');
  t.true(header.includes('label') && header.includes('E'), csv[0]);
  csv.slice(1).forEach((line, i) => {
    t.regex(line, new RegExp(`^"?${labels[i]}"?,`));
    const E = Number(line.split(',')[header.indexOf('E')]);
    near(t, E, r.checkpoints[i].E, `E in emergence.csv row ${i + 1}`);
  });
  assertSvg(t, join(out, 'emergence.svg'));
});

test('emergence --filter 1 runs (the series has no real f > 0, so nothing is dropped)', async (t) => {
  const r = okJson(t, await runCli(['emergence', ...STEPS.map((s) => join(series, s)), '--samples', '0-2', '--filter', '1', '--json', '--threads', '2']));
  t.is(r.filter, 1);
  assertCurve(t, r, STEPS); // default labels: the directory names
});

// ---------------------------------------------------------------- help, demo

const FLAGS: Record<string, string[]> = {
  mfa: ['--threshold', '--decimals', '--min-neighbors', '--q', '--json', '--threads', '--shards', '--backend'],
  nfd: ['--threshold', '--decimals', '--json', '--threads', '--shards'],
  nin: ['--sample', '--layer-sample', '--out', '--plan'],
  analyze: ['--samples', '--full', '--layer-sample', '--threshold', '--decimals', '--min-neighbors', '--q', '--threads', '--shards', '--shard-mb', '--json', '--out', '--backend', '--workers', '--nats', '--ship-bytes', '--model-root', '--ack-wait', '--run-id', '--resume'],
  emergence: ['--revisions', '--keep-duplicates', '--backend', '--workers', '--nats', '--ship-bytes', '--model-root', '--ack-wait', '--run-id', '--labels', '--filter', '--samples', '--full', '--layer-sample', '--threshold', '--decimals', '--min-neighbors', '--q', '--threads', '--shards', '--shard-mb', '--json', '--out'],
  demo: ['--dir', '--threads'],
  collect: ['--nats', '--subject', '--nats-user', '--nats-token', '--nats-tls-ca'],
  status: ['--nats', '--subject', '--json'],
  worker: ['--grpc', '--nats', '--subject', '--threads', '--model-root', '--metrics-port', '--max-message-mb', '--backend', '--describe', '--tls-cert', '--tls-key', '--tls-ca', '--require-client-cert'],
};

test('neuromfa --help lists every command, and each command --help every flag', async (t) => {
  const [top, ...subs] = await Promise.all([runCli(['--help']), ...Object.keys(FLAGS).map((c) => runCli([c, '--help']))]);
  t.is(top.code, 0, top.stderr);
  for (const c of Object.keys(FLAGS)) t.regex(top.stdout, new RegExp(`^\\s+${c}\\b`, 'm'), `top-level help names ${c}`);
  Object.keys(FLAGS).forEach((c, i) => {
    t.is(subs[i].code, 0, `${c} --help: ${subs[i].stderr}`);
    t.regex(subs[i].stdout, new RegExp(`Usage: neuromfa ${c}`));
    for (const f of FLAGS[c]) t.regex(subs[i].stdout, new RegExp(`\\s${f}\\b(?!-)`), `${c} --help mentions ${f}`);
  });
});

test('demo --dir --threads 2 prints a 5-checkpoint table and writes the report', async (t) => {
  const dir = join(T, 'demo');
  const r = await runCli(['demo', '--dir', dir, '--threads', '2']);
  t.is(r.code, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^\s*step\d\s/.test(l));
  t.is(rows.length, 5, r.stdout);
  t.regex(r.stdout, /checkpoint\s+alpha0\s+width\s+E/);
  t.regex(r.stdout, new RegExp(join(dir, 'report').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'says where the report is');
  const csv = readFileSync(join(dir, 'report', 'emergence.csv'), 'utf8').trimEnd().split('\n');
  t.is(csv.length, 6, 'a header and 5 rows');
  t.notRegex(csv.join('\n'), /NaN/);
  assertSvg(t, join(dir, 'report', 'emergence.svg'));
});
