/**
 * A gpu.js kernel as a program object (tfjs WebGPUProgram): its source is generated once
 * from a few parameters, and everything that changes the compiled code is in the cache key,
 * so one runner compiles each program once and reuses it for every shard.
 */
export interface KernelProgram {
  /** Readable name, e.g. `block-sums`. */
  readonly name: string;
  /** Everything the compiled code depends on: same key, same kernel. */
  readonly cacheKey: string;
  /** The kernel as gpu.js parses it: a JavaScript `function (...) { ... }` expression. */
  readonly source: string;
  /** Baked into the compiled code (gpu.js constants), hence part of the cache key. */
  readonly constants: Readonly<Record<string, number>>;
}

/** NEUROMFA_PRINT_KERNELS=1 prints each program, and what the backend made of it, once. */
export function printKernelsEnabled(): boolean {
  return process.env.NEUROMFA_PRINT_KERNELS === '1';
}

const printed = new Set<string>();

/**
 * Prints the program's source and, where gpu.js keeps it as text, the backend's translation
 * (WGSL for webgpu, GLSL for gl, the generated JavaScript for cpu; webasm is bytecode).
 */
export function printProgram(program: KernelProgram, mode: string, translated: string | null): void {
  if (!printKernelsEnabled()) return;
  const key = `${mode}:${program.cacheKey}`;
  if (printed.has(key)) return;
  printed.add(key);
  const lines = [`[neuromfa gpu] program ${program.cacheKey} on ${mode}`, program.source];
  if (translated) lines.push(`[neuromfa gpu] ${mode} translation:`, translated);
  process.stderr.write(`${lines.join('\n')}\n`);
}
