/**
 * WebGPU in Node: gpu.js's webgpu backend looks for `navigator.gpu`, which Node does not
 * provide; the `webgpu` package (Dawn's node binding, a gpu.js dependency) does. Installed
 * on demand, never at import: loading dawn.node can fail outright (it needs libstdc++ with
 * GLIBCXX_3.4.32, i.e. GCC 13's runtime; on this project's CI image it does not load), and
 * a live Dawn instance keeps the process from exiting (dawn-gpu/node-webgpu README,
 * crbug 387965810), so `releaseNavigatorGpu` drops it when the last user closes.
 */
interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

interface GpuLike {
  requestAdapter(options?: unknown): Promise<AdapterLike | null>;
}

export interface AdapterLike {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string };
  requestDevice(descriptor?: unknown): Promise<object>;
}

/**
 * Dawn's node binding leaves `GPUDevice.onuncapturederror` unimplemented: its getter throws
 * UNIMPLEMENTED and its setter rejects a function ("invalid value to onuncapturederror").
 * gpu.js assigns a logging handler to every device it opens, so on a real GPU each kernel
 * failed with "object is not of the correct interface type" (first run on an H200,
 * 2026-12-04). An own property on each device takes the handler; Dawn never calls it, and
 * errors still reach gpu.js through its error scopes and our self-test and result checks.
 */
export function acceptErrorHandler(gpu: GpuLike): GpuLike {
  const requestAdapter = gpu.requestAdapter.bind(gpu);
  const patched = async (options?: unknown): Promise<AdapterLike | null> => {
    const adapter = await requestAdapter(options);
    if (!adapter) return adapter;
    const requestDevice = adapter.requestDevice.bind(adapter);
    Object.defineProperty(adapter, 'requestDevice', {
      configurable: true,
      value: async (descriptor?: unknown) => {
        const device = await requestDevice(descriptor);
        let handler: unknown = null;
        Object.defineProperty(device, 'onuncapturederror', { configurable: true, get: () => handler, set: (fn: unknown) => (handler = fn) });
        return device;
      },
    });
    return adapter;
  };
  Object.defineProperty(gpu, 'requestAdapter', { configurable: true, value: patched });
  return gpu;
}

let users = 0;
let installed: { owner: 'navigator' | 'global' } | null = null;

function navigatorObject(): Record<string, unknown> | undefined {
  return (globalThis as { navigator?: Record<string, unknown> }).navigator;
}

/** Puts a Dawn-backed `navigator.gpu` in place (or reuses one already there). Throws why not. */
export async function acquireNavigatorGpu(flags: string[] = []): Promise<void> {
  users++;
  try {
    if (navigatorObject()?.gpu) return;
    const dawn = (await import('webgpu')) as unknown as DawnModule;
    for (const [name, value] of Object.entries(dawn.globals)) {
      if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
    }
    const gpu = acceptErrorHandler(dawn.create(flags));
    const nav = navigatorObject();
    if (nav) {
      Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true, writable: true });
      installed = { owner: 'navigator' };
    } else {
      Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
      installed = { owner: 'global' };
    }
  } catch (err) {
    users--;
    throw err;
  }
}

/** A human description of the adapter Dawn picks, or throws when there is none. */
export async function requestAdapterInfo(): Promise<string> {
  const gpu = navigatorObject()?.gpu as GpuLike | undefined;
  if (!gpu) throw new Error('navigator.gpu is missing');
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('Dawn found no WebGPU adapter (no GPU, or no Vulkan loader/ICD for it)');
  const info = adapter.info ?? {};
  return [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unnamed adapter';
}

/**
 * Drops the Dawn instance when its last user is done, so the process can exit; `beforeDrop`
 * runs first, only then (gpu.js shares one device among all its webgpu kernels).
 */
export async function releaseNavigatorGpu(beforeDrop?: () => Promise<void>): Promise<void> {
  if (users > 0) users--;
  if (users > 0 || !installed) return;
  await beforeDrop?.();
  if (installed.owner === 'global') delete (globalThis as { navigator?: unknown }).navigator;
  else delete navigatorObject()?.gpu;
  installed = null;
}
