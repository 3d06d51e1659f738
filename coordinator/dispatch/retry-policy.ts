import { NeuromfaError } from '../../proto/errors.js';

/**
 * Retry rules as pure functions, tested without a network (Temporal's grpc-retry idea).
 * A retryable failure is the transport's or the worker's, never the input's: a corrupt
 * checkpoint fails the same way on every worker.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof NeuromfaError) return err.retryable;
  // Anything that is not one of ours (a socket reset, a timeout) is the transport's.
  return true;
}

export interface BackoffOptions {
  /** @default 200 ms */
  baseMs?: number;
  /** @default 5000 ms */
  maxMs?: number;
  /** A number in [0, 1) for the jitter; Math.random by default. */
  random?: () => number;
}

/** Exponential backoff with full jitter: attempt 1 waits up to base, attempt k up to base·2^(k-1). */
export function delayFor(attempt: number, o: BackoffOptions = {}): number {
  const base = o.baseMs ?? 200;
  const max = o.maxMs ?? 5000;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * (o.random ?? Math.random)());
}
