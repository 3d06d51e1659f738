/**
 * Worker metrics in the Prometheus text exposition format (version 0.0.4), served on
 * --metrics-port at /metrics. Hand-written: counters, gauges and one histogram are all the
 * worker needs, and prom-client would add a dependency and process metrics nobody asked for.
 * /healthz answers 200 once the worker is ready (for NATS-only workers, which have no gRPC
 * health service to probe).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TransportError } from '../proto/errors.js';

type Labels = Record<string, string>;

const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const labelText = (l: Labels) => {
  const keys = Object.keys(l).sort();
  return keys.length ? `{${keys.map((k) => `${k}="${escape(l[k])}"`).join(',')}}` : '';
};

/** Shard durations in seconds: shards take from milliseconds (tiny edge lists) to minutes. */
const SECONDS_BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

interface Series {
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
  values: Map<string, { labels: Labels; value: number; buckets?: number[]; sum?: number }>;
}

export class WorkerMetrics {
  private readonly series = new Map<string, Series>();

  constructor() {
    this.declare('neuromfa_worker_shards_total', 'counter', 'Shards handled, by outcome (ok, error).');
    this.declare('neuromfa_worker_shard_seconds', 'histogram', 'Time to compute one shard, seconds.');
    this.declare('neuromfa_worker_edges_total', 'counter', 'Edges (weights) of the shards computed.');
    this.declare('neuromfa_worker_bytes_read_total', 'counter', 'Weight bytes read from disk or received inline.');
    this.declare('neuromfa_worker_errors_total', 'counter', 'Shards and messages refused or failed, by error code.');
    this.declare('neuromfa_worker_shards_in_flight', 'gauge', 'Shards being computed now.');
    this.declare('neuromfa_worker_threads', 'gauge', 'Threads of the shard pool.');
    this.declare('neuromfa_worker_ready', 'gauge', '1 once the thread pool has passed its self-test, 0 while starting or stopping.');
    // The other series' `backend` label is where shards run (the thread pool); these name the
    // partition-sum backend (f64 or a gpu.js mode).
    this.declare('neuromfa_worker_backend_info', 'gauge', 'The partition-sum backend (--backend, auto resolved) and its device; always 1.');
    this.declare('neuromfa_worker_backend_shards_total', 'counter', 'Shards computed, by the partition-sum backend that ran (a GPU fallback counts as f64).');
    this.declare('neuromfa_worker_backend_fallbacks_total', 'counter', 'Shards on which the GPU backend failed and f64 computed the shard instead.');
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    this.slot(name, labels).value += by;
  }

  set(name: string, value: number, labels: Labels = {}): void {
    this.slot(name, labels).value = value;
  }

  observe(name: string, seconds: number, labels: Labels = {}): void {
    const s = this.slot(name, labels);
    s.buckets ??= SECONDS_BUCKETS.map(() => 0);
    SECONDS_BUCKETS.forEach((le, k) => {
      if (seconds <= le) s.buckets![k]++;
    });
    s.value++;
    s.sum = (s.sum ?? 0) + seconds;
  }

  /** The current value of a counter or gauge (tests, and the shutdown log line). */
  value(name: string, labels: Labels = {}): number {
    return this.series.get(name)?.values.get(labelText(labels))?.value ?? 0;
  }

  /** Sum over every label set of a series. */
  total(name: string): number {
    let t = 0;
    for (const v of this.series.get(name)?.values.values() ?? []) t += v.value;
    return t;
  }

  exposition(): string {
    const out: string[] = [];
    for (const [name, s] of this.series) {
      out.push(`# HELP ${name} ${s.help}`, `# TYPE ${name} ${s.type}`);
      for (const v of s.values.values()) {
        if (s.type !== 'histogram') {
          out.push(`${name}${labelText(v.labels)} ${v.value}`);
          continue;
        }
        SECONDS_BUCKETS.forEach((le, k) => out.push(`${name}_bucket${labelText({ ...v.labels, le: String(le) })} ${v.buckets![k]}`));
        out.push(`${name}_bucket${labelText({ ...v.labels, le: '+Inf' })} ${v.value}`);
        out.push(`${name}_sum${labelText(v.labels)} ${v.sum}`, `${name}_count${labelText(v.labels)} ${v.value}`);
      }
    }
    return out.join('\n') + '\n';
  }

  /** Serves /metrics (and /healthz from `ready`) on `port`; 0 picks a free one. */
  async listen(port: number, host: string | undefined, ready: () => boolean): Promise<{ port: number; close: () => Promise<void> }> {
    const server: Server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405).end();
      } else if (path === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(this.exposition());
      } else if (path === '/healthz') {
        const ok = ready();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'SERVING\n' : 'NOT_SERVING\n');
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new TransportError(`--metrics-port ${port}: cannot listen (${err.message})`, { cause: err })));
      server.listen(port, host, () => resolve());
    });
    return {
      port: (server.address() as AddressInfo).port,
      close: () => {
        server.closeAllConnections();
        return new Promise<void>((r) => server.close(() => r()));
      },
    };
  }

  private declare(name: string, type: Series['type'], help: string): void {
    this.series.set(name, { type, help, values: new Map() });
  }

  private slot(name: string, labels: Labels) {
    const s = this.series.get(name);
    if (!s) throw new Error(`unknown metric ${name}`);
    const key = labelText(labels);
    let v = s.values.get(key);
    if (!v) s.values.set(key, (v = { labels, value: 0 }));
    return v;
  }
}
