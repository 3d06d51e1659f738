export { BackendUnavailableError } from '../../proto/errors.js';

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
