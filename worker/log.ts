/**
 * JSON-lines logging for the worker process: one object per line, `time`, `level`, `msg`
 * and the fields, so log collectors (Kubernetes, Loki) parse it without a pattern. Tests read
 * the same lines to learn the ports a worker bound.
 */
export type LogLevel = 'info' | 'warn' | 'error';

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function jsonLogger(write: (line: string) => void): Logger {
  const emit = (level: LogLevel) => (msg: string, fields: Record<string, unknown> = {}) => {
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n');
  };
  return { info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** Discards everything: the default for in-process servers in tests. */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
