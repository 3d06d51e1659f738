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
export function runCli(args: string[]): Promise<Run> {
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

/** The fastest of `times` runs, by whole-process seconds. */
export async function best(args: string[], times = 3): Promise<Run> {
  let top: Run | undefined;
  for (let i = 0; i < times; i++) {
    const r = await runCli(args);
    if (!top || r.seconds < top.seconds) top = r;
  }
  return top!;
}
