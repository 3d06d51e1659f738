import { availableParallelism } from 'node:os';
import { PiscinaBackend } from '../../worker/backends/piscina.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import { parseInteger } from './flags.js';
import { progressBar } from './progress.js';
import type { RunListener } from '../run/run-shards.js';

/** What every command gets: output streams, and how to make a backend and a progress bar. */
export interface CliContext {
  out: (text: string) => void;
  err: (text: string) => void;
  interactive: boolean;
}

export const defaultContext: CliContext = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  interactive: Boolean(process.stderr.isTTY),
};

export function threadsFrom(raw: string | undefined): number {
  return raw === undefined ? availableParallelism() : parseInteger('--threads', raw, 1, 1024);
}

/** Runs `work` with a thread pool and a progress bar, closing both whatever happens. */
export async function withBackend<T>(ctx: CliContext, threads: number, label: string, work: (b: ShardBackend, l: RunListener) => Promise<T>): Promise<T> {
  const backend = new PiscinaBackend(threads);
  const progress = progressBar(ctx.interactive, label);
  try {
    return await work(backend, progress.listener);
  } finally {
    progress.stop();
    await backend.close();
  }
}

export const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
