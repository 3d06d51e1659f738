import test from 'ava';
import { join } from 'node:path';
import type { MfaParams, ShardTask } from '../proto/shard.js';
import { analyzeModel } from '../coordinator/analysis/model-analysis.js';
import { InProcessBackend } from '../worker/backends/in-process.js';
import { ShardService } from '../worker/serve.js';
import { conformanceDir } from './helpers/shared.js';

/**
 * A sampled shard on a worker's ShardService: the model it names is read under the model root
 * (or pinned on the hub), and its samples come back as the embedded run computes them, bit for
 * bit; what a worker refuses to open is a one-line InputError.
 */
const params: MfaParams = { threshold: 150, decimals: 0, minNeighbors: 10, q: [-2, -1, 0, 1, 2] };
const task = (model: string): ShardTask => ({ id: 3, measure: 'sampled', params, input: { kind: 'model', model, layerSample: 32, samples: [0, 2], shardsPerSample: 3, perLayer: false } });

async function service(modelRoot?: string): Promise<ShardService> {
  const s = new ShardService({ threads: 1, modelRoot, maxMessageBytes: 1 << 20, backend: new InProcessBackend() });
  await s.whenReady();
  return s;
}

test('a sampled shard read under the model root gives the embedded run\'s spectra and digests, bit for bit', async (t) => {
  const s = await service(conformanceDir);
  const reply = await s.handle(task('gptneox/neox-f16-trained'), { transport: 'test' });
  if (!reply.ok) return t.fail(reply.error.message);
  const r = reply.result;
  if (r.measure !== 'sampled') return t.fail(r.measure);
  t.like(r, { layout: 'gpt-neox', architecture: 'GPTNeoXForCausalLM', requests: 0 });
  t.deepEqual(r.samples.map((x) => [x.sample, x.partials.length]), [[0, 3], [2, 3]]);
  t.true(r.bytesRead > 0);
  const embedded = await analyzeModel(join(conformanceDir, 'gptneox', 'neox-f16-trained'), { samples: [0, 2], layerSample: 32, params, shardsPerSample: 3, shardBytes: 1 << 20 }, new InProcessBackend());
  const viaWorker = await analyzeModel(join(conformanceDir, 'gptneox', 'neox-f16-trained'), { samples: [0, 2], layerSample: 32, params, shardsPerSample: 3, shardBytes: 1 << 20, workersRead: { modelRoot: conformanceDir, pieces: 1 } }, {
    name: 'worker',
    concurrency: 1,
    run: async (t2) => {
      const answer = await s.handle(t2, { transport: 'test' });
      if (!answer.ok) throw new Error(answer.error.message);
      return answer.result;
    },
    close: async () => {},
  });
  t.deepEqual(viaWorker.samples, embedded.samples);
  t.deepEqual(r.samples.map((x) => x.bytesSha256), embedded.samples.map((x) => x.bytesSha256));
  await s.close();
});

test('what a worker will not open is a one-line InputError naming the model', async (t) => {
  const rooted = await service(conformanceDir);
  const bare = await service();
  const cases: Array<[ShardService, string, RegExp]> = [
    [rooted, '../conformance/gptneox/neox-f16-trained', /^\.\.\/conformance\/gptneox\/neox-f16-trained: paths with "\.\." are refused; this worker reads only under its --model-root$/],
    [rooted, 'gptneox/no-such-model', /^gptneox\/no-such-model: no such file under the --model-root$/],
    [rooted, 'hf://EleutherAI/pythia-160m@main', /^hf:\/\/EleutherAI\/pythia-160m@main: workers read hub models pinned to a commit \(hf:\/\/OWNER\/NAME@<40-hex commit>\), not the revision main, which may move$/],
    [bare, 'gptneox/neox-f16-trained', /^a shard names gptneox\/neox-f16-trained, but this worker has no --model-root and reads no files: give it --model-root, or run with --ship-bytes$/],
  ];
  for (const [s, model, message] of cases) {
    const reply = await s.handle(task(model), { transport: 'test' });
    t.false(reply.ok, model);
    if (!reply.ok) {
      t.is(reply.error.code, 'INPUT', model);
      t.regex(reply.error.message, message);
    }
  }
  await Promise.all([rooted.close(), bare.close()]);
});
