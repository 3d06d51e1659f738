/**
 * Typed errors that keep their meaning across threads and the wire.
 * They travel as {name, code, message, retryable} and are rebuilt by name, because
 * structured clone (piscina) and msgpack both drop the prototype chain.
 */
const MARK = Symbol.for('neuromfa.error');

export class NeuromfaError extends Error {
  readonly code: string = 'NEUROMFA';
  readonly retryable: boolean = false;
  readonly [MARK] = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NeuromfaError';
  }
  /**
   * `x instanceof NeuromfaError` holds for any marked error, even one built by another copy
   * of this module; a subclass keeps the ordinary prototype check, so `instanceof UsageError`
   * stays specific.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== NeuromfaError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARK] === true;
  }
}

/** A flag or argument the user gave is invalid. */
export class UsageError extends NeuromfaError {
  override readonly code: string = 'USAGE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UsageError';
  }
}

/** An input file is missing, unreadable or malformed; permanent, never retried. */
export class InputError extends NeuromfaError {
  override readonly code: string = 'INPUT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InputError';
  }
}

/** A safetensors file violates the format (header, offsets, dtypes). */
export class SafetensorsFormatError extends InputError {
  override readonly code: string = 'SAFETENSORS_FORMAT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SafetensorsFormatError';
  }
}

/** The data cannot give a defined result (no selected node, fewer than two radii). */
export class AnalysisError extends NeuromfaError {
  override readonly code: string = 'ANALYSIS';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AnalysisError';
  }
}

/** Checkpoints or results disagree with what they claim to be. */
export class IntegrityError extends NeuromfaError {
  override readonly code: string = 'INTEGRITY';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IntegrityError';
  }
}

/** A transport failed; the same shard may succeed elsewhere. */
export class TransportError extends NeuromfaError {
  override readonly code: string = 'TRANSPORT';
  override readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransportError';
  }
}

/** A message that is not a well-formed neuromfa message; permanent (the same bytes fail everywhere). */
export class MessageFormatError extends InputError {
  override readonly code: string = 'MESSAGE_FORMAT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MessageFormatError';
  }
}

/**
 * A kernel backend was asked for by name (`--backend webgpu`) but cannot run on this machine.
 * It names the backend and why (the probe's own error), because "webgpu unavailable" alone
 * sends people looking in the wrong place: on a GPU node the usual cause is the Vulkan loader
 * or Dawn's libstdc++, not the GPU. A UsageError: the flag asked for the impossible.
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

export interface WireError {
  name: string;
  code: string;
  message: string;
  retryable: boolean;
}

const byName: Record<string, new (message: string) => NeuromfaError> = {
  NeuromfaError,
  UsageError,
  InputError,
  SafetensorsFormatError,
  AnalysisError,
  IntegrityError,
  TransportError,
  MessageFormatError,
};

export function toWireError(err: unknown): WireError {
  if (err instanceof NeuromfaError) {
    return { name: err.name, code: err.code, message: err.message, retryable: err.retryable };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { name: 'Error', code: 'UNEXPECTED', message, retryable: false };
}

export function fromWireError(wire: WireError): Error {
  // Its message already names backend and reason; rebuilt as the UsageError it is.
  if (wire.name === 'BackendUnavailableError') return Object.assign(new UsageError(wire.message), { name: wire.name });
  const Ctor = byName[wire.name];
  return Ctor ? new Ctor(wire.message) : Object.assign(new Error(wire.message), { name: wire.name });
}

/** Exit codes decided at one boundary: the CLI. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return 2;
  if (err instanceof IntegrityError) return 4;
  if (err instanceof TransportError) return 5;
  if (err instanceof InputError || err instanceof AnalysisError) return 3;
  return 1;
}
