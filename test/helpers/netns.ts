import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { cliPath, repoRoot } from './shared.js';

const exec = promisify(execFile);

/**
 * Two network namespaces joined by a veth pair, nothing else: `coordinator` holds 10.213.0.1,
 * `worker` 10.213.0.2, each with its own loopback. The addresses exist only inside them, so
 * several pairs can live side by side. cut() takes the worker's end of the link down: from
 * then on the coordinator's packets vanish without an answer — a partition as TCP sees it.
 * Needs root and iproute2 (`ip netns add`).
 */
export interface NetnsPair {
  readonly coordinator: string;
  readonly worker: string;
  readonly coordinatorIp: string;
  readonly workerIp: string;
  /** `ip netns exec NS command ...args`, without a shell. */
  spawnIn(ns: string, command: string, args: string[]): ChildProcess;
  cut(): Promise<void>;
  remove(): Promise<void>;
}

let made = 0;

/** Why namespaces cannot be made here, or undefined when they can. */
export function netnsMissing(): string | undefined {
  const probe = `neuromfa-probe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.error) return `no iproute2 here (${add.error.message}): network-namespace test skipped`;
  if (add.status !== 0) return `ip netns add failed (${add.stderr.trim()}; needs root): network-namespace test skipped`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

export async function makeNetnsPair(): Promise<NetnsPair> {
  const tag = `${process.pid}-${made++}`;
  const coordinator = `neuromfa-c-${tag}`;
  const worker = `neuromfa-w-${tag}`;
  const ip = (...args: string[]) => exec('ip', args);
  await ip('netns', 'add', coordinator);
  await ip('netns', 'add', worker);
  const remove = async () => {
    await ip('netns', 'del', coordinator).catch(() => undefined);
    await ip('netns', 'del', worker).catch(() => undefined);
  };
  try {
    // Created inside the namespaces, so the interface names cannot clash with anyone's.
    await ip('link', 'add', 'veth-c', 'netns', coordinator, 'type', 'veth', 'peer', 'name', 'veth-w', 'netns', worker);
    for (const [ns, dev, addr] of [
      [coordinator, 'veth-c', '10.213.0.1/30'],
      [worker, 'veth-w', '10.213.0.2/30'],
    ]) {
      await ip('-n', ns, 'addr', 'add', addr, 'dev', dev);
      await ip('-n', ns, 'link', 'set', dev, 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    coordinator,
    worker,
    coordinatorIp: '10.213.0.1',
    workerIp: '10.213.0.2',
    spawnIn: (ns, command, args) => spawn('ip', ['netns', 'exec', ns, command, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] }),
    cut: async () => void (await ip('-n', worker, 'link', 'set', 'veth-w', 'down')),
    remove,
  };
}

/** A `neuromfa worker` inside a namespace, as test/helpers/worker-process.ts starts one outside. */
export interface NetnsWorker {
  readonly proc: ChildProcess;
  readonly grpcPort: number;
  /** JSON log lines so far. */
  readonly logs: Array<Record<string, unknown>>;
  kill(): Promise<void>;
}

export function startWorkerIn(pair: NetnsPair, ns: string, args: string[]): Promise<NetnsWorker> {
  const proc = pair.spawnIn(ns, process.execPath, [cliPath, 'worker', '--backend', 'f64', ...args]);
  const logs: Array<Record<string, unknown>> = [];
  let err = '';
  let pending = '';
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const kill = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  };
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => void kill().then(() => reject(new Error(`worker in ${ns} not ready within 20 s: ${err}`))), 20_000);
    proc.stdout!.on('data', (d: Buffer) => {
      const lines = (pending + d.toString()).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        try {
          logs.push(JSON.parse(line));
        } catch {
          continue;
        }
        if (logs[logs.length - 1].msg !== 'ready') continue;
        clearTimeout(timer);
        resolve({ proc, grpcPort: logs.find((l) => l.msg === 'grpc listening')?.port as number, logs, kill });
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`worker in ${ns} exited before it was ready: ${err.trim()}`));
    });
  });
}
