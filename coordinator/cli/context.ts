import { availableParallelism } from 'node:os';
import { PiscinaBackend } from '../../worker/backends/piscina.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import { parseInteger } from './flags.js';
import { progressBar } from './progress.js';
import { remoteBackend } from './remote-backend.js';
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

/**
 * Runs `work` with a backend — remote workers when the flags name them, else a local thread
 * pool — and a progress bar, closing both whatever happens.
 */
export async function withBackend<T>(
  ctx: CliContext,
  threads: number,
  label: string,
  work: (b: ShardBackend, l: RunListener) => Promise<T>,
  flags: Record<string, string | boolean | undefined> = {},
): Promise<T> {
  let listener: RunListener = () => {};
  const remote = await remoteBackend(flags, (e) => listener(e));
  const backend = remote ?? new PiscinaBackend(threads);
  const progress = progressBar(ctx.interactive, label, remote ? (remote as { liveWorkers?: number }).liveWorkers : undefined, ctx.err);
  listener = progress.listener;
  try {
    return await work(backend, progress.listener);
  } finally {
    progress.stop();
    await backend.close();
  }
}

export const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
