import test, { type ExecutionContext } from 'ava';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSyntheticNeox } from '../coordinator/demo/synthetic-neox.js';
import { localHeaderOf } from './helpers/torch-zip.js';
import { MockHub } from './helpers/mock-hub.js';
import { runCli } from './helpers/run-cli.js';
import { conformanceDir, readJson } from './helpers/shared.js';
import { hfFixture, makeTmpDir } from './helpers/tmp.js';
import { startWorkerProcess } from './helpers/worker-process.js';

/*
 * Emergence series over the hub, through the CLI (as a researcher runs it): integrity
 * findings, the result cache, and --full over hf://. One mock hub for the file; every test
 * uses its own repositories and its own NEUROMFA_CACHE, and the tests run serially so the
 * hub's request log belongs to the test reading it.
 */

let hub: MockHub;
let tmp: { dir: string; cleanup: () => Promise<void> };
let seq = 0;
test.before(async () => {
  hub = await MockHub.start();
  tmp = await makeTmpDir('neuromfa-hub-series-');
});
test.after.always(async () => {
  await hub?.stop();
  await tmp?.cleanup();
});

async function freshDir(name: string): Promise<string> {
  const dir = join(tmp.dir, `${name}-${seq++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** The CLI against the mock hub, with the given cache (HF_TOKEN unset). */
async function cli(t: ExecutionContext, cache: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = await runCli([...args, '--threads', '1'], { env: { HF_ENDPOINT: hub.hubUrl, NEUROMFA_CACHE: cache, HF_HUB_CACHE: join(cache, 'no-hf-cache'), HF_TOKEN: '', ...env } });
  t.is(r.code, 0, r.stderr);
  return { json: JSON.parse(r.stdout), stderr: r.stderr };
}

const series = join(conformanceDir, 'series', 'tiny-neox-f16');
const STEP0_NOTE = 'GPT-NeoX step0 equals step1: the first step runs at learning rate 0';
const MAIN_NOTE = 'main points at the last training step';

async function filesOf(dir: string): Promise<Record<string, Uint8Array>> {
  const files: Record<string, Uint8Array> = {};
  for (const name of await readdir(dir)) files[name] = new Uint8Array(await readFile(join(dir, name)));
  return files;
}

/** Another "training step": every F32 weight nudged in its lowest mantissa bits, by `mark`. */
function nudged(file: Uint8Array, mark: number): Uint8Array {
  const out = file.slice();
  const headerLen = Number(new DataView(out.buffer).getBigUint64(0, true));
  for (let i = 8 + headerLen; i < out.length; i += 4) out[i] ^= mark;
  return out;
}

test('emergence --help explains --revisions and --keep-duplicates', async (t) => {
  const r = await runCli(['emergence', '--help']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /--revisions <list>[\s\S]*step<N> branch/);
  t.regex(r.stdout, /--keep-duplicates[\s\S]*left out/);
});

test('--revisions takes one repository without @REVISION', async (t) => {
  for (const args of [['hf://org/x@main'], ['hf://org/x', 'hf://org/y'], ['some/dir']]) {
    const r = await runCli(['emergence', ...args, '--revisions', 'all']);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, /--revisions/);
  }
});

const near = (t: ExecutionContext, a: number, b: number, what: string) => t.true(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

test.serial('a duplicated branch, the expected duplicates and a missing branch are reported, left out of E, and warned about', async (t) => {
  const repo = 'EleutherAI/tiny-series';
  const step = async (name: string, dir: string) => hub.addCommit(repo, await filesOf(join(series, dir)), { branch: name });
  const commits: Record<string, string> = {};
  for (const [name, dir] of [['step0', 'step0'], ['step1', 'step0'], ['step8', 'step8'], ['step64', 'step64'], ['step512', 'step512'], ['main', 'step512']]) commits[name] = await step(name, dir);
  // A branch serving another step's weights (EleutherAI/pythia #195): the same commit.
  hub.setBranch(repo, 'step100', commits.step64);
  const cache = await freshDir('cache');
  const args = ['emergence', `hf://${repo}`, '--revisions', 'step0,step1,step8,step64,step100,step512,step999,main', '--samples', '0-2', '--json'];
  const { json: r, stderr } = await cli(t, cache, args);

  t.deepEqual(r.integrity.duplicates, [
    { labels: ['step0', 'step1'], reason: 'file-sha256', expected: true, files: ['model.safetensors'], note: STEP0_NOTE },
    { labels: ['step64', 'step100'], reason: 'file-sha256', expected: false, files: ['model.safetensors'] },
    { labels: ['step512', 'main'], reason: 'file-sha256', expected: true, files: ['model.safetensors'], note: MAIN_NOTE },
  ]);
  t.deepEqual(r.integrity.excluded, ['step1', 'step100', 'main']);
  t.deepEqual(r.integrity.missing, [{ label: 'step999', model: `hf://${repo}@step999`, reason: `hf://${repo}@step999: revision not found (Invalid rev id: step999)` }]);
  t.deepEqual(
    r.integrity.checkpoints.map((c: any) => [c.label, c.commit]),
    ['step0', 'step1', 'step8', 'step64', 'step100', 'step512', 'main'].map((l) => [l, l === 'step100' ? commits.step64 : commits[l]]),
  );
  for (const c of r.integrity.checkpoints) t.regex(c.sha256['model.safetensors'], /^[0-9a-f]{64}$/);
  // Only the analysed checkpoints have a hash of the bytes they read.
  t.deepEqual(r.integrity.checkpoints.filter((c: any) => c.sampledSha256).map((c: any) => c.label), ['step0', 'step8', 'step64', 'step512']);

  // The curve is the real run's: E at every step equals the reference pipeline.
  const expected = readJson(join(series, 'expected.json'));
  t.deepEqual(r.checkpoints.map((c: any) => [c.label, c.commit]), ['step0', 'step8', 'step64', 'step512'].map((l) => [l, commits[l]]));
  r.checkpoints.forEach((c: any, i: number) => near(t, c.E, expected.steps[i].E, `E of ${c.label}`));
  t.deepEqual(r.perCheckpoint.map((p: any) => p.commit), r.checkpoints.map((c: any) => c.commit));

  const lines = stderr.trimEnd().split('\n');
  t.true(lines.includes(`warning: step999 is missing and left out: hf://${repo}@step999: revision not found (Invalid rev id: step999)`), stderr);
  t.true(lines.includes('warning: step64, step100 hold the same weight file (model.safetensors): duplicates; step100 left out of E (--keep-duplicates keeps it)'), stderr);
  t.true(lines.includes(`note: step0 and step1 hold the same weight file (model.safetensors), as expected (${STEP0_NOTE}); step1 left out of E (--keep-duplicates keeps it)`), stderr);
  t.true(lines.includes(`note: step512 and main hold the same weight file (model.safetensors), as expected (${MAIN_NOTE}); main left out of E (--keep-duplicates keeps it)`), stderr);

  // The same series again: every result comes from the cache, so no tensor request at all.
  hub.resetCounters();
  const again = await cli(t, cache, args);
  t.deepEqual(again.json.checkpoints, r.checkpoints);
  t.deepEqual(again.json.integrity, r.integrity);
  t.is(hub.requests('cdn').length, 0);
  t.is(hub.requests('hub', /model\.safetensors/).length, 0);
  t.deepEqual(again.json.perCheckpoint.map((p: any) => [p.cachedSamples, p.stats]), r.checkpoints.map(() => [3, null]));
});

test.serial('--revisions all: step branches in numeric order; --keep-duplicates keeps them in E', async (t) => {
  const repo = 'EleutherAI/tiny-all';
  for (const [name, dir] of [['step512', 'step512'], ['step8', 'step8'], ['step0', 'step0'], ['step64', 'step64'], ['step1000', 'step64'], ['main', 'step64']]) {
    hub.addCommit(repo, await filesOf(join(series, dir)), { branch: name });
  }
  const cache = await freshDir('cache');
  const { json: r } = await cli(t, cache, ['emergence', `hf://${repo}`, '--revisions', 'all,main', '--samples', '0', '--json']);
  t.deepEqual(r.integrity.checkpoints.map((c: any) => c.label), ['step0', 'step8', 'step64', 'step512', 'step1000', 'main']);
  t.deepEqual(r.integrity.duplicates, [
    { labels: ['step64', 'step1000', 'main'], reason: 'file-sha256', expected: false, files: ['model.safetensors'] },
  ]);
  t.deepEqual(r.integrity.excluded, ['step1000', 'main']);
  t.deepEqual(r.checkpoints.map((c: any) => c.label), ['step0', 'step8', 'step64', 'step512']);

  const kept = (await cli(t, cache, ['emergence', `hf://${repo}`, '--revisions', 'all,main', '--samples', '0', '--json', '--keep-duplicates'])).json;
  t.deepEqual(kept.integrity.duplicates, r.integrity.duplicates);
  t.deepEqual(kept.integrity.excluded, []);
  t.deepEqual(kept.checkpoints.map((c: any) => c.label), ['step0', 'step8', 'step64', 'step512', 'step1000', 'main']);
  t.is(kept.checkpoints[4].E, kept.checkpoints[2].E);
});

test.serial('a duplicated single shard of a sharded checkpoint, and the same weights in another file format (sampled bytes)', async (t) => {
  const repo = 'org/sharded-series';
  const base = await filesOf(hfFixture('gpt-neox-sharded'));
  const shard5 = 'model-00005-of-00009.safetensors';
  const step = (mark: number, keep?: string) =>
    Object.fromEntries(Object.entries(base).map(([name, bytes]) => [name, name.startsWith('model-') && name !== keep ? nudged(bytes, mark) : bytes]));
  hub.addCommit(repo, base, { branch: 'step10' });
  hub.addCommit(repo, step(1, shard5), { branch: 'step20' });
  hub.addCommit(repo, step(2), { branch: 'step30' });
  // gpt-neox-bin holds exactly the gpt-neox-sharded weights, as one pytorch_model.bin.
  hub.addCommit(repo, await filesOf(hfFixture('gpt-neox-bin')), { branch: 'step40' });
  // An upload that stopped short: the index names a shard the revision does not have.
  const { ['model-00009-of-00009.safetensors']: _, ...partial } = step(3);
  const step50 = hub.addCommit(repo, partial, { branch: 'step50' });
  const cache = await freshDir('cache');
  const { json: r, stderr } = await cli(t, cache, ['emergence', `hf://${repo}`, '--revisions', 'all', '--samples', '0,1', '--layer-sample', '16', '--json']);
  t.deepEqual(r.integrity.duplicates, [
    { labels: ['step10', 'step20'], reason: 'file-sha256', expected: false, files: [shard5] },
    { labels: ['step10', 'step40'], reason: 'sampled-bytes', expected: false },
  ]);
  t.deepEqual(r.integrity.excluded, ['step20', 'step40']);
  t.deepEqual(r.integrity.missing, [
    {
      label: 'step50',
      model: `hf://${repo}@step50`,
      reason: `hf://${repo}@${step50}/model.safetensors.index.json: names shard files missing from the repository: model-00009-of-00009.safetensors`,
    },
  ]);
  t.deepEqual(r.checkpoints.map((c: any) => c.label), ['step10', 'step30']);
  t.regex(stderr, /warning: step10, step40 read identical sampled weight bytes: duplicates; step40 left out of E/);
});

test.serial('extending a series computes only the new steps', async (t) => {
  const repo = 'EleutherAI/tiny-grow';
  const blobs: Record<string, string> = {};
  for (const name of ['step0', 'step8', 'step64']) {
    const files = await filesOf(join(series, name));
    hub.addCommit(repo, files, { branch: name });
    blobs[name] = (await import('node:crypto')).createHash('sha256').update(files['model.safetensors']).digest('hex');
  }
  const cache = await freshDir('cache');
  const first = (await cli(t, cache, ['emergence', `hf://${repo}`, '--revisions', 'step0,step8', '--samples', '0-2', '--json'])).json;
  hub.resetCounters();
  const grown = (await cli(t, cache, ['emergence', `hf://${repo}`, '--revisions', 'step0,step8,step64', '--samples', '0-2', '--json'])).json;
  t.deepEqual(grown.checkpoints.slice(0, 2), first.checkpoints);
  t.deepEqual(grown.perCheckpoint.map((p: any) => p.cachedSamples), [3, 3, 0]);
  const cdn = hub.requests('cdn');
  t.true(cdn.length > 0);
  t.true(cdn.every((r) => r.path.startsWith(`/blobs/${blobs.step64}`)), JSON.stringify(cdn.map((r) => r.path)));
  // A new sample of old steps is computed for that sample alone.
  const more = (await cli(t, cache, ['emergence', `hf://${repo}`, '--revisions', 'step0,step8,step64', '--samples', '0-3', '--json'])).json;
  t.deepEqual(more.perCheckpoint.map((p: any) => p.cachedSamples), [3, 3, 3]);
});

test.serial('analyze hf://… --full equals --full of the local copy; names the commit; counts requests; a rerun reads the cache', async (t) => {
  const dir = hfFixture('gpt-neox-sharded');
  const commit = await hub.addCommitFromDir('org/full-series', dir);
  const cache = await freshDir('cache');
  // Small shards, so column ranges of one matrix go to different shards and threads.
  const args = ['--full', '--shard-mb', '0.02', '--json'];
  const local = (await cli(t, cache, ['analyze', dir, ...args])).json;
  hub.resetCounters();
  const remote = (await cli(t, cache, ['analyze', 'hf://org/full-series', ...args])).json;
  t.deepEqual(remote.samples, local.samples);
  t.deepEqual([remote.stats.edges, remote.stats.fileBytes, remote.stats.shards], [local.stats.edges, local.stats.fileBytes, local.stats.shards]);
  t.is(remote.commit, commit);
  t.is(Object.keys(remote.sha256).length, 9);
  t.is(local.stats.requests, 0);
  t.is(local.commit, undefined);
  t.is(remote.stats.requests, hub.log.length);
  t.true(local.stats.shards > 9, `${local.stats.shards} shards`);
  hub.resetCounters();
  const again = (await cli(t, cache, ['analyze', 'hf://org/full-series', ...args])).json;
  t.deepEqual(again.samples, local.samples);
  t.is(hub.requests('cdn').length, 0);
  const text = await runCli(['analyze', 'hf://org/full-series', '--full', '--shard-mb', '0.02', '--threads', '1'], { env: { HF_ENDPOINT: hub.hubUrl, NEUROMFA_CACHE: cache, HF_HUB_CACHE: join(cache, 'no-hf-cache'), HF_TOKEN: '' } });
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, new RegExp(`^hf://org/full-series: GPTNeoXForCausalLM, layout gpt-neox, full NIN, commit ${commit}$`, 'm'));
  t.regex(text.stdout, /bytes read \([\d.]+%\) in \d+ HTTP requests,/);
  // A remote worker reads the pinned hub files by range itself, through its own cache; with
  // --ship-bytes the coordinator reads and sends the bytes instead.
  const workerCache = await freshDir('worker-cache');
  const worker = await startWorkerProcess(['--threads', '1', '--grpc', '127.0.0.1:0'], { env: { HF_ENDPOINT: hub.hubUrl, NEUROMFA_CACHE: workerCache, HF_TOKEN: '' } });
  try {
    hub.resetCounters();
    const viaWorker = (await cli(t, cache, ['analyze', 'hf://org/full-series', ...args, '--workers', `grpc://${worker.grpcAddress}`])).json;
    t.deepEqual(viaWorker.samples, local.samples);
    // The coordinator's cache holds every byte already: what the CDN served went to the worker.
    t.true(hub.requests('cdn').length > 0);
    hub.resetCounters();
    const shipped = (await cli(t, cache, ['analyze', 'hf://org/full-series', ...args, '--workers', `grpc://${worker.grpcAddress}`, '--ship-bytes'])).json;
    t.deepEqual(shipped.samples, local.samples);
    t.is(hub.requests('cdn').length, 0);
  } finally {
    await worker.stop();
  }
});

test.serial('a sampled analysis of a pythia-410m-shaped file needs under 5% of its bytes, counted by the mock', async (t) => {
  // pythia-410m's layers (hidden 1024, 16-bit, rows of 2 and 8 KiB) in 2 blocks instead of 24,
  // with a 1024-token vocabulary: the fraction per layer is the same, and the small
  // embeddings do not flatter it (the real file's 200 MB of unread embeddings would).
  const dir = await freshDir('pythia-410m-shaped');
  await writeSyntheticNeox(dir, { hidden: 1024, blocks: 2, vocab: 1024, dtype: 'F16', progress: 0.5, seed: 7 });
  await hub.addCommitFromDir('EleutherAI/pythia-410m-shaped', dir);
  const size = (await readFile(join(dir, 'model.safetensors'))).length;
  hub.resetCounters();
  // Exact rows: on loopback the read planner would rightly read through most gaps.
  const r = (await cli(t, await freshDir('cache'), ['analyze', 'hf://EleutherAI/pythia-410m-shaped', '--samples', '0', '--json'], { NEUROMFA_HUB_GAP_KB: '0' })).json;
  t.is(r.stats.fileBytes, size);
  t.true(hub.bytesServed.cdn < 0.05 * size, `${hub.bytesServed.cdn} of ${size} bytes (${((100 * hub.bytesServed.cdn) / size).toFixed(2)}%)`);
  t.true(hub.bytesServed.cdn > 0);
  t.is(r.stats.requests, hub.log.length);
  t.log(`${((100 * hub.bytesServed.cdn) / size).toFixed(2)}% of ${size} bytes in ${hub.log.length} requests`);
});

test.serial('analyze hf://… --full of a .bin checks the CRC-32 of every storage entry it downloaded (exit 4 when corrupt)', async (t) => {
  const files = await filesOf(hfFixture('gpt-neox-bin'));
  const bin = files['pytorch_model.bin'];
  bin[localHeaderOf(bin, 'pytorch_model/data/5').data + 100] ^= 0x40;
  await hub.addCommit('org/corrupt-bin', files);
  const r = await runCli(['analyze', 'hf://org/corrupt-bin', '--full', '--threads', '1'], { env: { HF_ENDPOINT: hub.hubUrl, NEUROMFA_CACHE: await freshDir('cache'), HF_TOKEN: '' } });
  t.is(r.code, 4, r.stderr);
  t.regex(r.stderr, /^neuromfa: hf:\/\/org\/corrupt-bin@[0-9a-f]{40}\/pytorch_model\.bin: zip entry pytorch_model\/data\/5 has CRC-32 [0-9a-f]{8} but the archive records [0-9a-f]{8}: the file is corrupt\n$/);
});
