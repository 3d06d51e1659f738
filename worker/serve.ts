/**
 * A worker's shard service: takes a ShardTask however it arrived (gRPC, NATS), confines its
 * file paths to --model-root, runs it on the thread pool and counts it. The transports
 * (worker/transport/) only move bytes to and from handleMessage(); the math is
 * executeShard(), called by the pool's threads — there is no second copy of it here.
 */
import { realpath } from 'node:fs/promises';
import { hostname } from 'node:os';
import { VERSION } from './version.js';
import { resolve } from 'node:path';
import { InputError, MessageFormatError, toWireError } from '../proto/errors.js';
import { decodeTask, encodeReply } from '../proto/codec.js';
import { MAX_SHARD_WEIGHT_BYTES } from '../proto/limits.js';
import type { BackendAvailability, WorkerDescription } from '../proto/describe.js';
import type { BackendFallback, KernelBackend, MatrixPart, ShardReply, ShardTask } from '../proto/shard.js';
import { PiscinaBackend } from './backends/piscina.js';
import type { ShardBackend } from './backends/shard-backend.js';
import { executeShard } from './execute-shard.js';
import { F64 } from './gpu/backends.js';
import { silentLogger, type Logger } from './log.js';
import { matrixBlocks } from './matrix-histogram.js';
import { WorkerMetrics } from './metrics.js';
import { confinePath } from './confine-path.js';
import { bytesPerElement } from './io/dtype.js';
import { openCheckpoint, type Checkpoint } from './io/checkpoint.js';
import { isHubRef, parseHubRef } from './io/hub/ref.js';
import { runSampledShard } from './sampled-shard.js';

export interface ServeOptions {
  /** Threads of the shard pool. */
  threads: number;
  /** Shards may read files under this directory only; without it, only inline bytes. */
  modelRoot?: string;
  /** Largest message accepted, in bytes (the transports enforce it; Describe reports it). */
  maxMessageBytes: number;
  metrics?: WorkerMetrics;
  log?: Logger;
  /** Where shards run; a PiscinaBackend of `threads` unless given (tests inject one). */
  backend?: ShardBackend;
  /**
   * The partition-sum backend the pool's threads open, already resolved (startWorker does it
   * with worker/gpu resolveBackend), and every backend's availability, for describe.
   * @default f64, with only f64 listed
   */
  partitionBackend?: { name: KernelBackend; device: string; backends: BackendAvailability[] };
}


const F64_ONLY = { name: 'f64', device: F64.device, backends: [{ name: 'f64', available: true, detail: F64.device }] } as const;

/** What a worker with these settings is: Describe's answer, and `neuromfa worker --describe`. */
export function describeWorker(o: Pick<ServeOptions, 'threads' | 'modelRoot' | 'maxMessageBytes' | 'partitionBackend'>, transports: string[]): WorkerDescription {
  const kernel = o.partitionBackend ?? F64_ONLY;
  return {
    version: VERSION,
    threads: o.threads,
    backend: kernel.name,
    backends: kernel.backends.map((b) => ({ ...b })),
    transports,
    readsFiles: o.modelRoot !== undefined,
    maxMessageBytes: o.maxMessageBytes,
    host: hostname(),
  };
}

export interface HandleOptions {
  /** Which transport it came through, for the metrics' `transport` label. */
  transport: string;
  signal?: AbortSignal;
}

export class ShardService {
  readonly metrics: WorkerMetrics;
  readonly log: Logger;
  private running = 0;
  private ready = false;
  private readonly backend: ShardBackend;
  private idleWaiters: Array<() => void> = [];

  private readonly started: Promise<void>;
  /** realpath of --model-root, or undefined: no file access at all. */
  private root: { given: string; real: string } | undefined;

  /**
   * Starts the pool at once; whenReady() resolves when every thread has computed a
   * self-test shard correctly (and the model root exists). Shards arriving before wait.
   */
  constructor(private readonly o: ServeOptions) {
    this.metrics = o.metrics ?? new WorkerMetrics();
    this.log = o.log ?? silentLogger;
    this.metrics.set('neuromfa_worker_threads', o.threads);
    this.metrics.set('neuromfa_worker_ready', 0);
    const kernel = o.partitionBackend ?? F64_ONLY;
    this.metrics.set('neuromfa_worker_backend_info', 1, { backend: kernel.name, device: kernel.device });
    this.backend = o.backend ?? new PiscinaBackend(o.threads, { partitionBackend: kernel.name, partitionDevice: kernel.device, onFallback: (f) => this.fallback(f) });
    this.started = this.start();
    // Observed here so an early failure is not an unhandled rejection; whenReady() rethrows it.
    this.started.catch(() => {});
  }

  whenReady(): Promise<void> {
    return this.started;
  }

  private async start(): Promise<void> {
    if (this.o.modelRoot !== undefined) {
      const given = resolve(this.o.modelRoot);
      try {
        this.root = { given, real: await realpath(given) };
      } catch (err) {
        throw new InputError(`--model-root ${this.o.modelRoot}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (err as Error).message}`, { cause: err });
      }
    }
    await this.selfTest();
    this.ready = true;
    this.metrics.set('neuromfa_worker_ready', 1);
  }

  get isReady(): boolean {
    return this.ready;
  }

  /** Shards accepted and not yet answered. */
  get inFlight(): number {
    return this.running;
  }

  get threads(): number {
    return this.o.threads;
  }

  describe(transports: string[]): WorkerDescription {
    return describeWorker(this.o, transports);
  }

  /** Decodes, runs and encodes one shard; never throws: every failure is an error reply. */
  async handleMessage(bytes: Uint8Array, options: HandleOptions): Promise<Uint8Array> {
    let task: ShardTask;
    try {
      task = decodeTask(bytes);
    } catch (err) {
      return this.refuse(err, options.transport);
    }
    return encodeReply(await this.handle(task, options));
  }

  /** An error reply for a message refused before it became a task (malformed, oversized). */
  refuse(err: unknown, transport: string): Uint8Array {
    const error = toWireError(err);
    this.metrics.inc('neuromfa_worker_errors_total', { ...this.labels(transport), code: error.code });
    this.log.warn('message refused', { transport, error: error.message, code: error.code });
    return encodeReply({ ok: false, error });
  }

  async handle(task: ShardTask, options: HandleOptions): Promise<ShardReply> {
    const labels = this.labels(options.transport);
    this.running++;
    this.metrics.set('neuromfa_worker_shards_in_flight', this.running);
    try {
      await this.started;
      const result =
        task.measure === 'sampled'
          ? await runSampledShard(task, { open: (model) => this.openModel(model), run: (t) => this.backend.run(t, { signal: options.signal }) })
          : await this.backend.run(await this.confined(task), { signal: options.signal });
      this.metrics.inc('neuromfa_worker_shards_total', { ...labels, measure: task.measure, outcome: 'ok' });
      this.metrics.inc('neuromfa_worker_backend_shards_total', { backend: result.backend });
      this.metrics.observe('neuromfa_worker_shard_seconds', result.seconds, labels);
      this.metrics.inc('neuromfa_worker_edges_total', labels, result.edges);
      this.metrics.inc('neuromfa_worker_bytes_read_total', labels, result.bytesRead);
      this.log.info('shard done', { transport: options.transport, id: task.id, measure: task.measure, backend: result.backend, seconds: result.seconds, edges: result.edges, bytesRead: result.bytesRead });
      return { ok: true, result };
    } catch (err) {
      const error = toWireError(err);
      this.metrics.inc('neuromfa_worker_shards_total', { ...labels, measure: task.measure, outcome: 'error' });
      this.metrics.inc('neuromfa_worker_errors_total', { ...labels, code: error.code });
      this.log.warn('shard failed', { transport: options.transport, id: task.id, error: error.message, code: error.code });
      return { ok: false, error };
    } finally {
      this.running--;
      this.metrics.set('neuromfa_worker_shards_in_flight', this.running);
      if (this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Resolves when no shard is in flight. */
  idle(): Promise<void> {
    return this.running === 0 ? Promise.resolve() : new Promise((r) => this.idleWaiters.push(r));
  }

  async close(): Promise<void> {
    this.ready = false;
    this.metrics.set('neuromfa_worker_ready', 0);
    await this.backend.close();
  }

  /** A GPU that failed mid-shard: that shard (and the thread's later ones) ran on f64. */
  private fallback(f: BackendFallback): void {
    this.metrics.inc('neuromfa_worker_backend_fallbacks_total', { backend: f.backend });
    this.log.warn('backend failed, shard computed on f64', { id: f.shard, backend: f.backend, reason: f.reason });
  }

  private labels(transport: string) {
    return { backend: this.backend.name, transport };
  }

  /**
   * The task as the pool may run it: inline bytes checked against the blocks they claim to
   * be, file paths replaced by their real paths under the model root. The pool's threads
   * open those paths (a function cannot cross to a thread), so the check happens here.
   */
  private async confined(task: ShardTask): Promise<ShardTask> {
    if (task.measure !== 'mfa' || task.input.kind !== 'matrix') return task;
    const input = task.input;
    // A well-formed message can still describe absurd work (rows = 2^50): the block list
    // alone would exhaust memory. Planned shards are tens of MB.
    const weightBytes = input.parts.reduce((a, p) => a + p.rows * (input.colEnd - input.colStart) * bytesPerElement(p.dtype)!, 0);
    if (!(weightBytes <= MAX_SHARD_WEIGHT_BYTES)) {
      throw new InputError(`shard ${task.id} covers ${weightBytes} bytes of weights, over the worker's ${MAX_SHARD_WEIGHT_BYTES}: plan smaller shards (--shard-mb)`);
    }
    if (input.inline) {
      const blocks = matrixBlocks(input.parts, input.inputs, input.colStart, input.colEnd);
      if (blocks.length !== input.inline.length) throw new MessageFormatError(`shard ${task.id}: ${input.inline.length} inline blocks, the matrix range needs ${blocks.length}`);
      blocks.forEach((b, k) => {
        const want = b.count * b.sliceBytes;
        if (input.inline![k].length !== want) throw new MessageFormatError(`shard ${task.id}: inline block ${k} has ${input.inline![k].length} bytes, ${want} expected`);
      });
      return task;
    }
    // Hub files pinned to a commit (hf://OWNER/NAME@COMMIT/FILE) are read from the hub by range.
    const local = input.parts.filter((p) => !isHubRef(p.file));
    if (local.length && !this.root) {
      throw new InputError(`shard ${task.id} names ${local[0].file}, but this worker has no --model-root and reads no files: ship the bytes inline (--ship-bytes)`);
    }
    const real = new Map<string, string>();
    for (const p of input.parts) if (!real.has(p.file)) real.set(p.file, isHubRef(p.file) ? p.file : await confinePath(this.root!, p.file));
    const parts: MatrixPart[] = input.parts.map((p) => ({ ...p, file: real.get(p.file)! }));
    return { ...task, input: { ...input, parts } };
  }

  /**
   * The checkpoint a sampled shard names. Hub references must be pinned to a commit (the
   * coordinator pins them): a branch could move between two workers' reads. Paths are read
   * under the model root only, as matrix shards' files are.
   */
  private async openModel(model: string): Promise<Checkpoint> {
    if (isHubRef(model)) {
      const { revision } = parseHubRef(model);
      if (!/^[0-9a-f]{40}$/.test(revision)) throw new InputError(`${model}: workers read hub models pinned to a commit (hf://OWNER/NAME@<40-hex commit>), not the revision ${revision}, which may move`);
      return openCheckpoint(model);
    }
    if (!this.root) throw new InputError(`a shard names ${model}, but this worker has no --model-root and reads no files: give it --model-root, or run with --ship-bytes`);
    return openCheckpoint(await confinePath(this.root, model));
  }

  /**
   * `threads` tiny shards at once through the pool (piscina starts every thread up front),
   * each compared with the in-process kernel: the pool loads the kernel and agrees with it.
   */
  private async selfTest(): Promise<void> {
    const degree = 24;
    const weights = Float64Array.from({ length: 2 * degree }, (_, k) => 1 / (2 + (k % degree) * 3.7));
    const task: ShardTask = {
      id: 0,
      measure: 'mfa',
      params: { threshold: 150, decimals: 0, minNeighbors: 1, q: [-1, 0, 1] },
      input: { kind: 'groups', weights, stride: 1, offsets: Uint32Array.of(0, degree, 2 * degree) },
    };
    const want = await executeShard(task);
    const got = await Promise.all(Array.from({ length: this.o.threads }, () => this.backend.run(task)));
    for (const r of got) {
      if (r.measure !== 'mfa' || want.measure !== 'mfa' || r.sums.join() !== want.sums.join() || r.present.join() !== want.present.join()) {
        throw new Error(`self-test shard on the ${this.backend.name} backend disagrees with the in-process kernel`);
      }
    }
  }
}

