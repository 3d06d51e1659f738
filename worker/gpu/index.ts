/** The GPU partition-sum stage: float32 gpu.js kernels behind a backend registry. */
export { AUTO_PRIORITY, BACKEND_NAMES, F64, available, parseBackend, pickBackend, probeBackend, probeBackends, resolveBackend } from './backends.js';
export type { BackendName, BackendOptions, BackendStatus, PartitionBackend } from './backends.js';
export { BackendUnavailableError } from './errors.js';
export { GpuPartitionSums, planShard } from './partition-sums-gpu.js';
export type { BackendPartial, FallbackKind, GpuPartitionOptions } from './partition-sums-gpu.js';
export { SUMS_RELATIVE_BOUND, UNIT_ROUNDOFF_F32, tauErrorBound } from './precision.js';
export type { GpujsMode, KernelRunner } from './gpujs-runner.js';
