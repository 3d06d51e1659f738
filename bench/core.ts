import { best, nodeStartup, spread, withoutExtraCaCerts, type BenchSection } from './cli-runs.js';
import { edges4m, edges4mDegree64, edges4mDegree64As, pythiaShaped } from './datasets.js';

const REFERENCE_EDGES_PER_SECOND = 170_000; // the reference Python on this machine (issue #2)

/** The core engine through the CLI: mfa on an edge list, full and sampled model analyses. */
export const benchCore: BenchSection = async (say, log) => {
  {
    const file = await edges4m(log);
    const r = await best(['mfa', file, '--json']);
    const E = r.json.stats.edges;
    const ref = E / REFERENCE_EDGES_PER_SECOND;
    say(`mfa 4M-edge .npy: ${r.seconds.toFixed(3)} s whole process, ${(E / r.seconds / 1e6).toFixed(1)}M edges/s, ${(ref / r.seconds).toFixed(0)}× the reference (~${ref.toFixed(1)} s at 170k edges/s), peak RSS ${r.maxRssMB.toFixed(0)} MB`);
  }

  // Issue #9: the shape of sampled NINs, streamed; the other layouts show what a second pass costs.
  for (const [label, file] of [
    ['sorted .npy', await edges4mDegree64(log)],
    ['shuffled .npy (two passes)', await edges4mDegree64As('shuffled', log)],
    ['Fortran-order .npy', await edges4mDegree64As('fortran', log)],
    ['CSV (sorted: one pass)', await edges4mDegree64As('csv', log)],
  ] as const) {
    const r = await best(['mfa', file, '--json']);
    say(`mfa 4M-edge degree-64 ${label} (62,500 sources): ${r.seconds.toFixed(3)} s whole process, ${(r.json.stats.edges / r.seconds / 1e6).toFixed(1)}M edges/s, peak RSS ${r.maxRssMB.toFixed(0)} MB`);
  }

  for (const [name, hidden, blocks] of [
    ['pythia-70m', 512, 6],
    ['pythia-160m', 768, 12],
  ] as const) {
    const dir = await pythiaShaped(name, hidden, blocks, log);
    const r = await best(['analyze', dir, '--full', '--json']);
    const s = r.json.stats;
    say(
      `analyze --full ${name}-shaped F16 (hidden ${hidden}, ${blocks} blocks): ${r.seconds.toFixed(3)} s whole process, ${s.edges} edges, ${(s.edges / r.seconds / 1e6).toFixed(1)}M edges/s, peak RSS ${r.maxRssMB.toFixed(0)} MB`,
    );
  }

  {
    const dir = await pythiaShaped('pythia-410m', 1024, 24, log);
    for (const samples of ['0', '0-9']) {
      const r = await best(['analyze', dir, '--samples', samples, '--json'], 2);
      const s = r.json.stats;
      say(
        `analyze --samples ${samples} pythia-410m-shaped F16 (hidden 1024, 24 blocks): ${r.seconds.toFixed(3)} s, bytesRead ${s.bytesRead} of ${s.fileBytes} (${((100 * s.bytesRead) / s.fileBytes).toFixed(2)}%), ${s.edges} edges`,
      );
    }
    // A local emergence series: the same checkpoint under 12 labels (its duplicates kept), so
    // every member reads, builds and computes 10 samples as distinct checkpoints would.
    const labels = Array.from({ length: 12 }, (_, i) => `step${i}`);
    const r = await best(['emergence', ...labels.map(() => dir), '--labels', labels.join(','), '--keep-duplicates', '--json'], 2);
    say(`emergence of 12 local pythia-410m-shaped checkpoints, --samples 0-9: ${r.seconds.toFixed(3)} s whole process, ${((1000 * r.seconds) / 12).toFixed(0)} ms a checkpoint, peak RSS ${r.maxRssMB.toFixed(0)} MB`);
    await issue9Targets(dir, say);
  }
};

/**
 * Issue #9's local targets as whole processes (median and best of five, after the bench
 * generated the inputs: the page cache holds them, though this VM's proactive reclaim may
 * evict the checkpoint between runs), with and without NODE_EXTRA_CA_CERTS where it is set.
 */
async function issue9Targets(pythia410m: string, say: (line: string) => void): Promise<void> {
  const clean = withoutExtraCaCerts();
  const envs = clean ? ([['as this machine runs Node', process.env], ['without NODE_EXTRA_CA_CERTS', clean]] as const) : ([['', process.env]] as const);
  for (const [label, env] of envs) {
    const starts = [];
    for (let i = 0; i < 5; i++) starts.push(await nodeStartup(env));
    say(`node -e 0${label ? `, ${label}` : ''}: ${(Math.min(...starts) * 1000).toFixed(0)} ms best of 5`);
  }
  const degree64 = await edges4mDegree64(() => {});
  for (const [target, name, args] of [
    ['≤ 0.5 s', 'analyze --samples 0-4 pythia-410m-shaped', ['analyze', pythia410m, '--samples', '0-4', '--json']],
    ['≤ 0.3 s', 'mfa 4M-edge degree-64 .npy', ['mfa', degree64, '--json']],
  ] as const) {
    for (const [label, env] of envs) {
      const r = await spread([...args], 5, env);
      say(`target ${target}: ${name}${label ? `, ${label}` : ''}: median ${r.median.toFixed(3)} s, best ${r.best.toFixed(3)} s, peak RSS ${r.maxRssMB.toFixed(0)} MB`);
    }
  }
}
