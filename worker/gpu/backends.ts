import { UsageError } from '../../proto/errors.js';
import { KERNEL_BACKENDS, type KernelBackend } from '../../proto/shard.js';
import type { BoxMass } from '../kernel/box-mass.js';
import { partitionSums } from '../kernel/partition-sums.js';
import { BackendUnavailableError, reasonOf } from './errors.js';
// Types only: the gpu.js modules load when a GPU backend is opened, so a pool thread on the
// default f64 kernel starts without them (~20 ms of each thread's start-up).
import type { GpujsMode, KernelRunner } from './gpujs-runner.js';
import type { BackendPartial, GpuPartitionOptions, GpuPartitionSums } from './partition-sums-gpu.js';

/** `--backend` values: the float64 CPU kernel and the gpu.js modes (declared in proto: results carry them). */
export type BackendName = KernelBackend;
export const BACKEND_NAMES: readonly BackendName[] = KERNEL_BACKENDS;

/**
 * What `auto` tries, best first: gl, then f64. webgpu, webasm and gpu.js's cpu mode run only
 * when named. webgpu's first runs on a real GPU (H200, 16 cores; bench/RESULTS.md) were
 * slower than f64 in every whole run: 0.22-0.89× its speed at 1-16 threads, though the
 * kernel alone ran 1.7-3.7× a thread of f64. gpu.js's uploads and nested-array readback,
 * and the one thread Dawn allows (worker/gpu/hosted-runner.ts), cost more than the stage.
 * Measured on pythia-1b full-NIN shards (bench/gpu.ts), webasm computes the stage at
 * 0.4-0.45× the speed of f64 and in float32; putting it above f64 would make every
 * GPU-less run slower and break the 1e-9 conformance of the default path. gpu.js's cpu mode
 * (0.2×) exists to test the kernels where nothing else runs.
 */
export const AUTO_PRIORITY: readonly BackendName[] = ['gl', 'f64'];

/** The partition-sum stage of a shard, on one backend. */
export interface PartitionBackend {
  readonly name: BackendName;
  /** What it runs on, for `worker --describe` and reports. */
  readonly device: string;
  /** For `auto`: the backends tried before this one and why each was passed over. */
  readonly passedOver: readonly BackendStatus[];
  partitionSums(box: BoxMass, q: Float64Array, minNeighbors: number): Promise<BackendPartial>;
  close(): Promise<void>;
}

export interface BackendStatus {
  name: BackendName;
  available: boolean;
  /** Why not, when unavailable: the probe's own error; for `auto`, also why an available one was passed over. */
  reason?: string;
  device?: string;
}

export interface BackendOptions extends GpuPartitionOptions {
  /** Builds the runner of a gpu.js mode; tests put failing runners here. @default gpu.js */
  createRunner?: (mode: GpujsMode) => Promise<KernelRunner>;
}

/** `--backend` parsed at the CLI boundary; the message names the flag. */
export function parseBackend(value: string): 'auto' | BackendName {
  if (value === 'auto' || (BACKEND_NAMES as readonly string[]).includes(value)) return value as 'auto' | BackendName;
  throw new UsageError(`--backend must be one of auto, ${BACKEND_NAMES.join(', ')}; got ${JSON.stringify(value)}`);
}

class F64Backend implements PartitionBackend {
  readonly name = 'f64';
  readonly device = 'CPU, float64';
  constructor(readonly passedOver: readonly BackendStatus[] = []) {}
  async partitionSums(box: BoxMass, q: Float64Array, minNeighbors: number): Promise<BackendPartial> {
    return { ...partitionSums(box, q, minNeighbors), backend: 'f64' };
  }
  async close(): Promise<void> {}
}

/** The float64 kernel: the default of every shard, and what a GPU falls back to. */
export const F64: PartitionBackend = new F64Backend();

class GpuBackend implements PartitionBackend {
  constructor(
    readonly name: GpujsMode,
    private readonly sums: GpuPartitionSums,
    readonly passedOver: readonly BackendStatus[],
  ) {}
  get device(): string {
    return this.sums.runner.device;
  }
  partitionSums(box: BoxMass, q: Float64Array, minNeighbors: number): Promise<BackendPartial> {
    return this.sums.partitionSums(box, q, minNeighbors);
  }
  close(): Promise<void> {
    return this.sums.close();
  }
}

/** A gpu.js backend that has passed its self-test, or a throw saying why not. */
async function openGpu(mode: GpujsMode, options: BackendOptions, passedOver: readonly BackendStatus[]): Promise<GpuBackend> {
  const [{ createGpujsRunner }, { GpuPartitionSums }, { selfTest }] = await Promise.all([import('./gpujs-runner.js'), import('./partition-sums-gpu.js'), import('./self-test.js')]);
  const runner = await (options.createRunner ?? createGpujsRunner)(mode);
  try {
    await selfTest(runner);
  } catch (err) {
    await runner.close();
    throw err;
  }
  return new GpuBackend(mode, new GpuPartitionSums(runner, options), passedOver);
}

async function open(name: BackendName, options: BackendOptions, passedOver: readonly BackendStatus[] = []): Promise<PartitionBackend> {
  return name === 'f64' ? new F64Backend(passedOver) : openGpu(name, options, passedOver);
}

/** Probes of the default runners, once per process: loading Dawn or a GL context is not free. */
const probes = new Map<BackendName, Promise<BackendStatus>>();

/** Whether `name` runs here: it opens the backend, runs its self-test and closes it. Never throws. */
export function probeBackend(name: BackendName, options: BackendOptions = {}): Promise<BackendStatus> {
  const cacheable = !options.createRunner;
  const cached = cacheable ? probes.get(name) : undefined;
  if (cached) return cached;
  const probe = (async (): Promise<BackendStatus> => {
    try {
      const backend = await open(name, options);
      const device = backend.device;
      await backend.close();
      return { name, available: true, device };
    } catch (err) {
      return { name, available: false, reason: reasonOf(err) };
    }
  })();
  if (cacheable) probes.set(name, probe);
  return probe;
}

/** Every backend with its availability and, where unavailable, the reason (for `worker --describe`). */
export async function probeBackends(options: BackendOptions = {}): Promise<BackendStatus[]> {
  const out: BackendStatus[] = [];
  // One at a time: two backends initialising drivers at once helps nobody.
  for (const name of BACKEND_NAMES) out.push(await probeBackend(name, options));
  return out;
}

/** The names of the backends that run here. */
export async function available(options: BackendOptions = {}): Promise<BackendName[]> {
  return (await probeBackends(options)).filter((s) => s.available).map((s) => s.name);
}

/**
 * A CPU posing as a GPU: Mesa's llvmpipe/lavapipe and softpipe, Google's SwiftShader. They run
 * the float32 kernel slower than f64 runs the float64 one, so `auto` passes them over (by
 * name they still run).
 */
const SOFTWARE_DEVICE = /llvmpipe|lavapipe|softpipe|swiftshader/i;
const softwareReason = (device: string) => `a software rasteriser (${device}), slower than f64 on the same CPU`;

/**
 * The backend for `--backend`: a name gives that backend or a BackendUnavailableError saying
 * why it cannot run; `auto` gives the first of AUTO_PRIORITY that opens, passes its
 * self-test and is not a software rasteriser, reporting the ones it passed over. f64 always
 * opens, so `auto` never fails.
 */
export async function pickBackend(request: 'auto' | BackendName, options: BackendOptions = {}): Promise<PartitionBackend> {
  if (request !== 'auto') {
    parseBackend(request);
    try {
      return await open(request, options);
    } catch (err) {
      throw new BackendUnavailableError(request, reasonOf(err), { cause: err });
    }
  }
  const passedOver: BackendStatus[] = [];
  for (const name of AUTO_PRIORITY) {
    const known = options.createRunner ? undefined : await probes.get(name);
    if (known && !known.available) {
      passedOver.push(known);
      continue;
    }
    if (known?.device && SOFTWARE_DEVICE.test(known.device)) {
      passedOver.push({ ...known, reason: softwareReason(known.device) });
      continue;
    }
    try {
      const backend = await open(name, options, passedOver.slice());
      if (!SOFTWARE_DEVICE.test(backend.device)) return backend;
      passedOver.push({ name, available: true, device: backend.device, reason: softwareReason(backend.device) });
      await backend.close();
    } catch (err) {
      const status: BackendStatus = { name, available: false, reason: reasonOf(err) };
      if (!options.createRunner) probes.set(name, Promise.resolve(status));
      passedOver.push(status);
    }
  }
  return new F64Backend(passedOver);
}

/**
 * `--backend` settled once, in the main thread, before any work: the backend every pool
 * thread then opens by name (auto resolved to what it picks, so all threads agree), with its
 * device. Throws BackendUnavailableError for a name that cannot run here.
 */
export async function resolveBackend(request: 'auto' | BackendName, options: BackendOptions = {}): Promise<Pick<PartitionBackend, 'name' | 'device' | 'passedOver'>> {
  if (options.createRunner) {
    const backend = await pickBackend(request, options);
    const resolved = { name: backend.name, device: backend.device, passedOver: backend.passedOver };
    await backend.close();
    return resolved;
  }
  // From the probes (each backend opened and self-tested once per process), so a worker that
  // describes its backends and then settles one does not open the device a second time.
  if (request !== 'auto') {
    parseBackend(request);
    const s = await probeBackend(request);
    if (!s.available) throw new BackendUnavailableError(request, s.reason ?? 'unavailable');
    return { name: request, device: s.device ?? '', passedOver: [] };
  }
  const passedOver: BackendStatus[] = [];
  for (const name of AUTO_PRIORITY) {
    const s = await probeBackend(name);
    if (!s.available) passedOver.push(s);
    else if (s.device && SOFTWARE_DEVICE.test(s.device)) passedOver.push({ ...s, reason: softwareReason(s.device) });
    else return { name, device: s.device ?? '', passedOver };
  }
  return { name: 'f64', device: F64.device, passedOver };
}
