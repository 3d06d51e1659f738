import { spawn } from 'node:child_process';
import { join } from 'node:path';

/** A benchmark section: prints its result lines through `say`, progress through `log`. */
export type BenchSection = (say: (line: string) => void, log: (line: string) => void) => Promise<void>;

export interface Run {
  seconds: number;
  maxRssMB: number;
  json: any;
}

const child = join(process.cwd(), 'dist', 'bench', 'child.js');

/** `neuromfa ARGS` as a user runs it, timed as a whole process, with its peak RSS. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const p = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
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

/** `times` runs of `neuromfa ARGS`, one after another. */
async function runsOf(args: string[], times: number, env?: NodeJS.ProcessEnv): Promise<Run[]> {
  const runs: Run[] = [];
  for (let i = 0; i < times; i++) runs.push(await runCli(args, env));
  return runs;
}

/** The fastest of `times` runs, by whole-process seconds. */
export async function best(args: string[], times = 3): Promise<Run> {
  return (await runsOf(args, times)).reduce((a, b) => (b.seconds < a.seconds ? b : a));
}

/**
 * This environment without NODE_EXTRA_CA_CERTS, or null where it is not set. Where it is set
 * (this sandbox sets it), every Node process parses that CA bundle at start-up (~50 ms here),
 * which a user's machine does not usually do.
 */
export function withoutExtraCaCerts(): NodeJS.ProcessEnv | null {
  if (process.env.NODE_EXTRA_CA_CERTS === undefined) return null;
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** Median and fastest of `times` runs, whole-process seconds, and the largest peak RSS. */
export async function spread(args: string[], times: number, env?: NodeJS.ProcessEnv): Promise<{ median: number; best: number; maxRssMB: number }> {
  const runs = await runsOf(args, times, env);
  const s = runs.map((r) => r.seconds).sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], best: s[0], maxRssMB: Math.max(...runs.map((r) => r.maxRssMB)) };
}

/** Seconds for `node -e 0`: Node's own start-up, which every whole-process figure includes. */
export function nodeStartup(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const p = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore', env });
    p.on('error', reject);
    p.on('close', () => resolve((performance.now() - started) / 1000));
  });
}
