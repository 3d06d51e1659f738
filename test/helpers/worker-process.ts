import { spawn, type ChildProcess } from 'node:child_process';
import { cliPath, repoRoot } from './shared.js';

/**
 * A real `node bin/neuromfa.js worker ...` process (on `--backend f64` unless told otherwise). Resolves once it logs `ready`, with the
 * ports it bound (pass `--grpc 127.0.0.1:0` / `--metrics-port 0` for free ones) and every
 * JSON log line so far; `stop()` sends SIGTERM and waits for the exit, `kill()` SIGKILLs.
 * Needs `tsc` to have run (the entry point imports dist/).
 */
export interface WorkerProcess {
  readonly proc: ChildProcess;
  readonly grpcPort?: number;
  readonly metricsPort?: number;
  /** `host:port` of the gRPC server, 127.0.0.1. */
  readonly grpcAddress?: string;
  /** JSON log lines parsed so far (stdout). */
  readonly logs: Array<Record<string, unknown>>;
  stderr(): string;
  /** Its Prometheus /metrics text (needs --metrics-port). */
  metrics(): Promise<string>;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startWorkerProcess(args: string[], o: { env?: NodeJS.ProcessEnv; readyTimeoutMs?: number } = {}): Promise<WorkerProcess> {
  // The worker's own default is auto, which on a machine with a working GPU computes in
  // float32; the tests compare workers with the embedded f64 run bit for bit.
  const backend = args.includes('--backend') || args.some((a) => a.startsWith('--backend=')) ? [] : ['--backend', 'f64'];
  const proc = spawn(process.execPath, [cliPath, 'worker', ...args, ...backend], { cwd: repoRoot, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  let err = '';
  let pending = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`worker not ready within ${o.readyTimeoutMs ?? 20_000} ms; stderr: ${err}`));
    }, o.readyTimeoutMs ?? 20_000);
    const ready = () => {
      clearTimeout(timer);
      const find = (msg: string) => logs.find((l) => l.msg === msg);
      const grpcPort = find('grpc listening')?.port as number | undefined;
      const w: WorkerProcess = {
        proc,
        grpcPort,
        grpcAddress: grpcPort === undefined ? undefined : `127.0.0.1:${grpcPort}`,
        metricsPort: find('metrics listening')?.port as number | undefined,
        logs,
        stderr: () => err,
        metrics: async () => (await fetch(`http://127.0.0.1:${find('metrics listening')?.port}/metrics`)).text(),
        exited,
        stop(signal = 'SIGTERM') {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
          return exited;
        },
        kill() {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
          return exited;
        },
      };
      resolve(w);
    };
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    proc.stdout!.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        try {
          logs.push(JSON.parse(line));
        } catch {
          continue;
        }
        if (logs[logs.length - 1].msg === 'ready') ready();
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`worker exited (${code ?? signal}) before it was ready; stderr: ${err.trim()}`));
    });
  });
}

/** A counter or gauge summed over all its label sets, from Prometheus text. */
export function metricTotal(text: string, name: string): number {
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
}

/** Shards a worker process has finished, from its metrics. */
export async function shardsDone(w: WorkerProcess): Promise<number> {
  return metricTotal(await w.metrics(), 'neuromfa_worker_shards_total');
}
