import { createHash } from 'node:crypto';

/** Flags that change neither the work nor its result: a run keeps its id without them. */
const VOLATILE = ['--nats', '--run-id', '--progress', '--debug', '--json', '--nats-user', '--nats-token', '--nats-tls-ca', '--shard-deadline'];
const TAKES_VALUE = new Set(['--nats', '--run-id', '--nats-user', '--nats-token', '--nats-tls-ca', '--shard-deadline']);

/** argv without `flags` (and their values, as `--f V` or `--f=V`), in order. */
function without(argv: readonly string[], flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const [flag] = argv[i].split('=', 1);
    if (!flags.includes(flag)) out.push(argv[i]);
    else if (TAKES_VALUE.has(flag) && !argv[i].includes('=')) i++;
  }
  return out;
}

/**
 * A JetStream run's id when --run-id is not given: the command line that defines the work and
 * the directory it ran in. The same command run again — a Kubernetes Job restarted after its
 * coordinator died — is the same run, and collects what its shards stored.
 */
export function defaultRunId(argv: readonly string[], cwd: string): string {
  return createHash('sha256').update(JSON.stringify({ cwd, argv: without(argv, VOLATILE) })).digest('hex').slice(0, 16);
}

/** The run's command line with another server and its id pinned: what `collect RUN` runs. */
export function collectArgs(argv: readonly string[], runId: string, nats: string): string[] {
  return [...without(argv, ['--nats', '--run-id']), '--nats', nats, '--run-id', runId];
}
