import { createRequire } from 'node:module';
import { GpuKernelError, reasonOf } from './errors.js';
import { printProgram, type KernelProgram } from './program.js';
import { acquireNavigatorGpu, releaseNavigatorGpu, requestAdapterInfo } from './webgpu-node.js';

/** The gpu.js modes neuromfa offers, by our names. */
export type GpujsMode = 'webgpu' | 'gl' | 'webasm' | 'cpu';

/** Our name → gpu.js's `mode`. */
const GPUJS_MODE: Record<GpujsMode, string> = { webgpu: 'webgpu', gl: 'headlessgl', webasm: 'webasm', cpu: 'cpu' };

/** The part of gpu.js 2.24 this file uses (its own typings predate webasm's settings). */
interface GpujsKernel {
  (...args: unknown[]): unknown;
  setOutput(output: number[]): unknown;
  kernel: { constructor: { mode: string }; fallbackReason?: string | null; compiledSource?: string | null; compiledFragmentShader?: string | null; _kernelString?: string | null };
  destroy(): void;
}
interface GpujsInstance {
  createKernel(source: string, settings: Record<string, unknown>): GpujsKernel;
  destroy(): Promise<void> | void;
}
interface GpujsModule {
  GPU: { new (settings: { mode: string }): GpujsInstance; isHeadlessGLSupported: boolean; isWebAssemblySupported: boolean };
  WebGPUContext: { destroy(): Promise<void> };
}

/** Index order of a block-sums result: [block][row][q]. */
export type BlockSums = ArrayLike<ArrayLike<ArrayLike<number>>>;

export interface BlockSumsCall {
  nAt: Float32Array;
  table: Float32Array;
  inv: Float32Array;
  rows: number;
  tableStride: number;
  Q: number;
  blocks: number;
}

/** Runs kernel programs on one device; the seam where tests put a runner that fails. */
export interface KernelRunner {
  readonly mode: GpujsMode;
  /** What the device is, for reports (`webasm (SIMD)`, the WebGPU adapter, ...). */
  readonly device: string;
  blockSums(program: KernelProgram, call: BlockSumsCall): Promise<BlockSums>;
  close(): Promise<void>;
}

let gpujs: Promise<GpujsModule> | null = null;

/** gpu.js is loaded on first use: the f64 path and the CLI never pay for its parser. */
function loadGpujs(): Promise<GpujsModule> {
  // gpu.js is CommonJS: its exports arrive as the default export (and, detected, as names).
  gpujs ??= import('gpu.js').then((m) => {
    const mod = m as unknown as GpujsModule & { default?: GpujsModule };
    return mod.default ?? mod;
  });
  return gpujs;
}

/** Why headless-gl cannot run: its optional native build is missing, or it made no context. */
function glReason(): string {
  try {
    createRequire(import.meta.url)('gl');
    return 'headless-gl loaded but could not create a WebGL context (no display/GPU driver for it)';
  } catch (err) {
    return `the optional native module gl is not installed or did not build (${reasonOf(err)})`;
  }
}

/**
 * The GL renderer's name. On a headless server it is often a software rasteriser (llvmpipe,
 * SwiftShader), which is a CPU in disguise: reports should say so.
 */
function glRenderer(): string {
  try {
    const create = createRequire(import.meta.url)('gl') as (w: number, h: number) => { RENDERER: number; getParameter(p: number): unknown; getExtension(n: string): { destroy(): void } | null };
    const gl = create(1, 1);
    const name = String(gl.getParameter(gl.RENDERER));
    gl.getExtension('STACKGL_destroy_context')?.destroy();
    return name;
  } catch (err) {
    return `renderer unknown (${reasonOf(err)})`;
  }
}

/**
 * A runner over one gpu.js instance in one explicit mode. Explicit modes rather than
 * gpu.js's 'async' auto-selection: our registry decides and reports the backend, and a
 * gpu.js kernel that quietly degrades to its cpu backend (it does, with a console warning,
 * for anything a backend cannot take) is caught here and reported as a failure.
 */
export async function createGpujsRunner(mode: GpujsMode): Promise<KernelRunner> {
  const lib = await loadGpujs();
  let device: string;
  if (mode === 'webgpu') {
    await acquireNavigatorGpu();
    try {
      device = `webgpu: ${await requestAdapterInfo()}`;
    } catch (err) {
      await releaseNavigatorGpu();
      throw err;
    }
  } else if (mode === 'gl') {
    if (!lib.GPU.isHeadlessGLSupported) throw new Error(glReason());
    device = `headless-gl: ${glRenderer()}`;
  } else if (mode === 'webasm') {
    if (!lib.GPU.isWebAssemblySupported) throw new Error('WebAssembly is not supported by this runtime');
    // One thread: a pool thread's kernel call stays on that thread (gpu.js's own pool unused).
    device = 'webasm, 1 thread';
  } else {
    device = 'gpu.js cpu (JavaScript)';
  }
  return new GpujsRunner(lib, mode, device);
}

class GpujsRunner implements KernelRunner {
  private readonly gpu: GpujsInstance;
  private readonly kernels = new Map<string, GpujsKernel>();
  private closed = false;

  constructor(
    private readonly lib: GpujsModule,
    readonly mode: GpujsMode,
    readonly device: string,
  ) {
    this.gpu = new lib.GPU({ mode: GPUJS_MODE[mode] });
  }

  private kernelFor(program: KernelProgram): GpujsKernel {
    let kernel = this.kernels.get(program.cacheKey);
    if (!kernel) {
      kernel = this.gpu.createKernel(program.source, {
        output: [1, 1, 1],
        constants: { ...program.constants },
        // One compiled kernel serves every shard: sizes travel as arguments. (webasm still
        // rebuilds its module per size signature; the padded shapes keep those few.)
        dynamicOutput: true,
        dynamicArguments: true,
        precision: 'single',
        tactic: 'precision',
        // webgpu is asynchronous whatever we ask.
        asyncMode: this.mode === 'webgpu',
      });
      this.kernels.set(program.cacheKey, kernel);
    }
    return kernel;
  }

  async blockSums(program: KernelProgram, call: BlockSumsCall): Promise<BlockSums> {
    if (this.closed) throw new GpuKernelError(`${this.mode} runner is closed`);
    const kernel = this.kernelFor(program);
    let out: unknown;
    try {
      kernel.setOutput([call.Q, call.rows, call.blocks]);
      out = await kernel(call.nAt, call.table, call.inv, call.rows, call.tableStride, call.Q);
    } catch (err) {
      throw new GpuKernelError(`${this.mode} kernel ${program.cacheKey} failed: ${reasonOf(err)}`, { cause: err });
    }
    const ran = kernel.kernel;
    printProgram(program, this.mode, ran.compiledSource ?? ran.compiledFragmentShader ?? ran._kernelString ?? null);
    if (this.mode !== 'cpu' && ran.constructor.mode === 'cpu') {
      throw new GpuKernelError(`gpu.js fell back to its cpu backend${ran.fallbackReason ? `: ${ran.fallbackReason}` : ''}`);
    }
    const sums = out as BlockSums;
    if (!sums || sums.length !== call.blocks || sums[0].length !== call.rows || sums[0][0].length !== call.Q) {
      throw new GpuKernelError(`${this.mode} kernel ${program.cacheKey} returned a result of the wrong shape`);
    }
    return sums;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const k of this.kernels.values()) k.destroy();
    this.kernels.clear();
    await this.gpu.destroy();
    if (this.mode === 'webgpu') await releaseNavigatorGpu(() => this.lib.WebGPUContext.destroy());
  }
}
