import { availableParallelism } from 'node:os';
import { UsageError } from '../../proto/errors.js';
import type { BackendFallback } from '../../proto/shard.js';
import type { ShardBackend } from '../../worker/backends/shard-backend.js';
import { parseInteger } from './flags.js';
import type { RunListener } from '../run/run-shards.js';

/** What every command gets: output streams, and how to make a backend and a progress bar. */
export interface CliContext {
  out: (text: string) => void;
  err: (text: string) => void;
  interactive: boolean;
  /** The command line being run (main sets it): a JetStream run records it for `collect`. */
  argv?: readonly string[];
  /** Runs another command line in this process and keeps its exit status (`collect RUN`). */
  rerun?: (argv: string[]) => Promise<void>;
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
 * pool computing partition sums on `flags.backend` (default f64) — and a progress bar,
 * closing both whatever happens. The backends are imported here, not with the CLI: every
 * command imports this module, and most never make a backend.
 */
export async function withBackend<T>(
  ctx: CliContext,
  threads: number,
  label: string,
  work: (b: ShardBackend, l: RunListener) => Promise<T>,
  flags: Record<string, string | boolean | undefined> = {},
): Promise<T> {
  const [{ PiscinaBackend }, { parseBackend, resolveBackend }, { progressBar }, { remoteBackend }] = await Promise.all([
    import('../../worker/backends/piscina.js'),
    import('../../worker/gpu/backends.js'),
    import('./progress.js'),
    import('./remote-backend.js'),
  ]);
  let listener: RunListener = () => {};
  const remoteFlags = Boolean(flags.workers || flags.nats);
  if (remoteFlags && flags.backend !== undefined) throw new UsageError('--backend picks where this machine computes; with --workers or --nats each worker uses its own --backend');
  // Settled before any work: a backend that cannot run here is one line and exit 2, not a failed shard.
  const chosen = remoteFlags ? undefined : await resolveBackend(parseBackend((flags.backend as string | undefined) ?? 'f64'));
  const remote = await remoteBackend(flags, (e) => listener(e), { argv: ctx.argv ?? [], command: label, err: ctx.err });
  const onFallback = (f: BackendFallback) => ctx.err(`neuromfa: ${f.backend} failed on shard ${f.shard}, which was computed on f64 instead: ${f.reason}\n`);
  const backend = remote ?? new PiscinaBackend(threads, { partitionBackend: chosen?.name, partitionDevice: chosen?.device, onFallback });
  // --progress: plain lines where stderr is no terminal (batch jobs, kubectl logs).
  const progress = progressBar(ctx.interactive ? 'bar' : flags.progress ? 'lines' : 'off', label, remote?.workers, ctx.err);
  listener = progress.listener;
  try {
    return await work(backend, progress.listener);
  } finally {
    progress.stop();
    await backend.close();
  }
}

export const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
