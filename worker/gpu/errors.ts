import { UsageError } from '../../proto/errors.js';

/**
 * A backend was asked for by name (`--backend webgpu`) but cannot run on this machine. It
 * names the backend and why (the probe's own error), because "webgpu unavailable" alone
 * sends people looking in the wrong place: on a GPU node the usual cause is the Vulkan
 * loader or Dawn's libstdc++, not the GPU. A UsageError: the flag asked for the impossible.
 */
export class BackendUnavailableError extends UsageError {
  override readonly code: string = 'BACKEND_UNAVAILABLE';
  readonly backend: string;
  readonly reason: string;
  constructor(backend: string, reason: string, options?: { cause?: unknown }) {
    super(`backend ${backend} is not available here: ${reason}`, options);
    this.name = 'BackendUnavailableError';
    this.backend = backend;
    this.reason = reason;
  }
}

/** A gpu.js kernel failed or silently degraded while running a shard; the shard reruns on f64. */
export class GpuKernelError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GpuKernelError';
  }
}

/** The one-line reason of anything thrown, for probes and fallback reports. */
export function reasonOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0].trim() || (err instanceof Error ? err.name : 'unknown error');
}
