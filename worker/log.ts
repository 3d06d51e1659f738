/**
 * JSON-lines logging for the worker process: one object per line, `time`, `level`, `msg`
 * and the fields, so log collectors (Kubernetes, Loki) parse it without a pattern. Tests read
 * the same lines to learn the ports a worker bound.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function jsonLogger(write: (line: string) => void, options: { level?: LogLevel; base?: Record<string, unknown> } = {}): Logger {
  const min = RANK[options.level ?? 'info'];
  const emit = (level: LogLevel) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (RANK[level] < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...options.base, ...fields }) + '\n');
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** Discards everything: the default for in-process servers in tests. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
