import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { fromWireError, UsageError } from '../../proto/errors.js';
import type { BackendFallback, KernelBackend, ShardResult, ShardTask, ThreadData, ThreadReply } from '../../proto/shard.js';
import type { GpujsMode } from '../gpu/gpujs-runner.js';
import { HOSTED_MODES, hostRunner, type RunnerHost } from '../gpu/hosted-runner.js';
import type { ShardBackend } from './shard-backend.js';

export interface PoolOptions {
  /**
   * The partition-sum backend every thread opens, by name: resolve `--backend` (auto, and
   * whether it runs here) in the main thread first, with worker/gpu resolveBackend. @default f64
   */
  partitionBackend?: KernelBackend;
  /** What that backend runs on, as resolveBackend said: threads report it. */
  partitionDevice?: string;
  /** Backends whose device the main thread hosts for the threads. @default HOSTED_MODES (webgpu) */
  hostedModes?: readonly GpujsMode[];
  /** Told, in the main thread, when a thread's backend failed on a shard that then ran on f64. */
  onFallback?: (fallback: BackendFallback) => void;
}

/** Shards on a piscina thread pool; the thread body is worker/pool/thread-entry.ts, loaded by thread-load.cts. */
export class PiscinaBackend implements ShardBackend {
  readonly name = 'threads';
  readonly concurrency: number;
  private readonly pool: Piscina;
  /** The main thread's runner for a hosted backend (webgpu), opened on the threads' first call. */
  readonly gpuHost?: RunnerHost;

  constructor(
    threads: number = availableParallelism(),
    private readonly o: PoolOptions = {},
  ) {
    if (!Number.isInteger(threads) || threads < 1) throw new UsageError(`--threads must be a positive integer, got ${threads}`);
    this.concurrency = threads;
    const partitionBackend = o.partitionBackend ?? 'f64';
    const hosted = (o.hostedModes ?? HOSTED_MODES).find((mode) => mode === partitionBackend);
    let gpuHost: ThreadData['gpuHost'];
    if (hosted) {
      gpuHost = { channel: `neuromfa-gpu-${randomUUID()}`, device: o.partitionDevice ?? hosted };
      // gpu.js loads when the first call arrives, as it does on the threads.
      this.gpuHost = hostRunner(gpuHost.channel, hosted, async (m) => (await import('../gpu/gpujs-runner.js')).createGpujsRunner(m));
    }
    this.pool = new Piscina({
      filename: new URL('../pool/thread-load.cjs', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      // Shards are CPU-bound: one per thread, the rest wait in piscina's queue.
      concurrentTasksPerWorker: 1,
      idleTimeout: 1000,
      workerData: { partitionBackend, gpuHost } satisfies ThreadData,
    });
  }

  async run(task: ShardTask, options: { signal?: AbortSignal } = {}): Promise<ShardResult> {
    const reply = (await this.pool.run(task, { signal: options.signal })) as ThreadReply;
    if (!reply.ok) throw fromWireError(reply.error);
    if (reply.fallback) this.o.onFallback?.(reply.fallback);
    return reply.result;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
    await this.gpuHost?.close();
  }
}
