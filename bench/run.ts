import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { edges4m, pythiaShaped } from './datasets.js';

/**
 * `npm run bench`: whole-process timings of the CLI on generated inputs. Each case spawns
 * `neuromfa` as a user would; peak memory comes from the child's own resource usage.
 */
const log = (s: string) => process.stderr.write(`${s}\n`);
const child = join(process.cwd(), 'dist', 'bench', 'child.js');

interface Run {
  seconds: number;
  maxRssMB: number;
  json: any;
}

function runCli(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const p = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0) return reject(new Error(`neuromfa ${args.join(' ')} exited ${code}: ${err}`));
      const rss = /__maxrss_kb=(\d+)/.exec(err);
      resolve({ seconds, maxRssMB: rss ? Number(rss[1]) / 1024 : NaN, json: JSON.parse(out) });
    });
  });
}

async function best(args: string[], times = 3): Promise<Run> {
  let top: Run | undefined;
  for (let i = 0; i < times; i++) {
    const r = await runCli(args);
    if (!top || r.seconds < top.seconds) top = r;
  }
  return top!;
}

const REFERENCE_EDGES_PER_SECOND = 170_000; // the reference Python on this machine (issue #2)
const lines: string[] = [];
const say = (s: string) => {
  lines.push(s);
  console.log(s);
};

say(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);

{
  const file = await edges4m(log);
  const r = await best(['mfa', file, '--json']);
  const E = r.json.stats.edges;
  const ref = E / REFERENCE_EDGES_PER_SECOND;
  say(`mfa 4M-edge .npy: ${r.seconds.toFixed(3)} s whole process, ${(E / r.seconds / 1e6).toFixed(1)}M edges/s, ${(ref / r.seconds).toFixed(0)}× the reference (~${ref.toFixed(1)} s at 170k edges/s), peak RSS ${r.maxRssMB.toFixed(0)} MB`);
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
}
