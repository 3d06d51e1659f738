import { TransportError } from '../../proto/errors.js';
import type { ShardBackend } from './shard-backend.js';

/**
 * The worker itself is out of reach — its connection dropped (a keepalive ping went
 * unanswered, or it closed the connection), it refuses connections, or it is shutting down —
 * rather than one shard failing on it. The coordinator sets such a worker aside at once,
 * instead of after repeated failures, and retries its shards elsewhere. Retryable like any
 * TransportError; raised on the coordinator's side only, so it never crosses the wire.
 */
export class WorkerLostError extends TransportError {
  override readonly code: string = 'WORKER_LOST';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WorkerLostError';
  }
}

/** A backend that can tell when a lost worker answers again, so that a run takes it back. */
export interface Rejoinable {
  /** Resolves once the worker answers again; rejects when the backend is closed first. */
  whenReachable(): Promise<void>;
}

export function canRejoin(b: ShardBackend): b is ShardBackend & Rejoinable {
  return typeof (b as Partial<Rejoinable>).whenReachable === 'function';
}
