import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Lan } from './netns-lan.js';
import { cliPath, repoRoot } from './shared.js';

/**
 * The pieces of a cluster, each started on one host of a Lan (test/helpers/netns-lan.ts):
 * the mock hub (bench/mock-hub-process.ts, driven over its stdin), a nats-server bound to the
 * host's address, `neuromfa worker` processes with their JSON logs, and other `neuromfa`
 * commands (a coordinator, `status`, `collect`) with their output. The test process
 * stays in the root namespace and cannot reach the LAN's addresses: it talks to each piece
 * through the pipes of the child it spawned.
 */

export type ClientCounts = Record<string, { requests: number; bytes: number }>;

export interface LanHub {
  /** HF_ENDPOINT for the LAN's hosts. */
  readonly url: string;
  readonly cdnUrl: string;
  /** A commit of every file in `dir` on `branch` (default main) of `repo`. */
  add(repo: string, dir: string, branch?: string): Promise<void>;
  /** Latency added to every response; with a rate, all bodies share one link of that many bytes/s. */
  link(latencyMs: number, bytesPerSec?: number): Promise<void>;
  /** Requests and body bytes per client address since the last counters(). */
  byClient(): Promise<ClientCounts>;
  /** Totals since the last call, then every counter (byClient too) starts again. */
  counters(): Promise<{ requests: number; bytes: number }>;
  /** The hub process's resident memory (it holds every added file). */
  rssBytes(): Promise<number>;
  stop(): Promise<void>;
}

/** The mock hub listening on `host`'s address. Needs `tsc` to have run. */
export async function startMockHubIn(lan: Lan, host: string): Promise<LanHub> {
  const proc = lan.spawnIn(host, process.execPath, [join(repoRoot, 'dist', 'bench', 'mock-hub-process.js'), '--host', lan.ip(host)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const line = await lines.next();
    if (line.done) throw new Error(`mock hub on ${host} exited: ${err.trim()}`);
    return JSON.parse(line.value) as Record<string, unknown>;
  };
  // One command at a time: each answers with exactly one line.
  let queue: Promise<unknown> = Promise.resolve();
  const ask = <T>(cmd: object): Promise<T> => {
    const answer = queue.then(() => {
      proc.stdin!.write(JSON.stringify(cmd) + '\n');
      return next();
    });
    queue = answer.catch(() => undefined);
    return answer as Promise<T>;
  };
  const first = (await next()) as { hubUrl: string; cdnUrl: string };
  return {
    url: first.hubUrl,
    cdnUrl: first.cdnUrl,
    add: async (repo, dir, branch) => void (await ask({ add: branch === undefined ? [repo, dir] : [repo, dir, branch] })),
    link: async (latencyMs, bytesPerSec) => void (await ask({ link: [latencyMs, bytesPerSec ?? 0] })),
    byClient: async () => (await ask<{ byClient: ClientCounts }>({ log: true })).byClient,
    counters: () => ask({ counters: true }),
    rssBytes: async () => {
      const status = await readFile(`/proc/${proc.pid}/status`, 'utf8');
      return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024;
    },
    async stop() {
      proc.stdin!.end();
      const killer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}

export interface LanNats {
  /** nats://IP:PORT, for the LAN's hosts. */
  readonly url: string;
  /** nats-server's log so far (stderr). */
  log(): string;
  /** SIGKILL, as a crash: the store stays, so startNatsIn with the same storeDir takes the queue up again. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A nats-server bound to `host`'s address (port 4222 by default: the namespace is the host's
 * alone). With `jetstream`, its store is `storeDir` (made if missing; a temporary one without).
 */
export async function startNatsIn(lan: Lan, host: string, o: { jetstream?: boolean; storeDir?: string; port?: number; maxPayload?: number } = {}): Promise<LanNats> {
  const dir = await mkdtemp(join(tmpdir(), 'neuromfa-lan-nats-'));
  const port = o.port ?? 4222;
  const lines = [`listen: "${lan.ip(host)}:${port}"`];
  if (o.maxPayload) lines.push(`max_payload: ${o.maxPayload}`);
  if (o.jetstream) {
    const store = o.storeDir ?? join(dir, 'jetstream');
    await mkdir(store, { recursive: true });
    lines.push(`jetstream { store_dir: ${JSON.stringify(store)} }`);
  }
  const config = join(dir, 'nats.conf');
  await writeFile(config, lines.join('\n') + '\n');
  const proc = lan.spawnIn(host, 'nats-server', ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server on ${host} did not start within 20 s:\n${log}`)), 20_000);
      const early = () => reject(new Error(`nats-server on ${host} exited before it was ready:\n${log}`));
      proc.once('exit', early);
      proc.stderr!.on('data', () => {
        if (!log.includes('Server is ready')) return;
        clearTimeout(timer);
        proc.off('exit', early);
        resolve();
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const kill = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGKILL');
    await exited;
  };
  return { url: `nats://${lan.ip(host)}:${port}`, log: () => log, kill, stop };
}

export interface LanWorker {
  readonly proc: ChildProcess;
  readonly host: string;
  /** JSON log lines so far (stdout). */
  readonly logs: Array<Record<string, unknown>>;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM: drain, then exit 0) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `neuromfa worker ARGS` on `host` (on `--backend f64` unless told otherwise, as
 * test/helpers/worker-process.ts), resolved once it logs `ready`.
 */
export function startWorkerIn(lan: Lan, host: string, args: string[], env: NodeJS.ProcessEnv = {}, o: { readyTimeoutMs?: number } = {}): Promise<LanWorker> {
  // The worker's own default is auto, which on a machine with a working GPU computes in float32.
  const backend = args.some((a) => a === '--backend' || a.startsWith('--backend=')) ? [] : ['--backend', 'f64'];
  const proc = lan.spawnIn(host, process.execPath, [cliPath, 'worker', ...args, ...backend], { env });
  const logs: Array<Record<string, unknown>> = [];
  let err = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  const worker: LanWorker = {
    proc,
    host,
    logs,
    stderr: () => err,
    exited,
    kill(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const readyTimeoutMs = o.readyTimeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => void worker.kill('SIGKILL').then(() => reject(new Error(`worker on ${host} not ready within ${readyTimeoutMs} ms: ${err.trim()}`))), readyTimeoutMs);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        logs.push(JSON.parse(line));
      } catch {
        return;
      }
      if (logs[logs.length - 1].msg !== 'ready') return;
      clearTimeout(timer);
      resolve(worker);
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`worker on ${host} exited (${code ?? signal}) before it was ready: ${err.trim()}`));
    });
  });
}

export interface LanCli {
  readonly proc: ChildProcess;
  /** stderr so far. */
  stderr(): string;
  /** At the exit: the code (-1 when a signal ended it), the signal and all the output. */
  readonly done: Promise<{ code: number; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** `neuromfa ARGS` on `host`, from the repository root (a coordinator, `status`, `collect`). */
export function cliIn(lan: Lan, host: string, args: string[], env: NodeJS.ProcessEnv = {}): LanCli {
  const proc = lan.spawnIn(host, process.execPath, [cliPath, ...args], { env });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    proc.once('close', (code, signal) => resolve({ code: code ?? -1, signal, stdout: out, stderr: err })),
  );
  return { proc, stderr: () => err, done };
}
