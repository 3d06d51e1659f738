import { Agent, request } from 'undici';
import type { FetchLike } from './http-byte-source.js';

/**
 * How a range request goes over the wire. By default undici's `request` on a keep-alive
 * Agent: a fetch() costs 2–3× its CPU per request (WHATWG streams and Response objects),
 * which on a sampled read of thousands of rows is the bottleneck of a 2-core machine
 * (bench/RESULTS.md, "Reading"). An injected fetch (HubOptions.fetch) is adapted instead.
 */

export interface RangeReply {
  status: number;
  headers: Headers;
  /** The body in chunks, as they arrive; read it or discard it. */
  body: AsyncIterable<Uint8Array>;
  discard(): Promise<void>;
}

export type RangeTransport = (url: string, headers: Record<string, string>, signal: AbortSignal) => Promise<RangeReply>;

/** Connections kept open per origin: one per request in flight (HTTP/1.1 keep-alive). */
const agents = new Map<number, Agent>();

function agentFor(connections: number): Agent {
  let a = agents.get(connections);
  if (!a) {
    a = new Agent({ connections, pipelining: 1, keepAliveTimeout: 10_000 });
    agents.set(connections, a);
  }
  return a;
}

export function undiciTransport(connections: number): RangeTransport {
  const dispatcher = agentFor(connections);
  return async (url, headers, signal) => {
    const res = await request(url, { method: 'GET', headers, signal, dispatcher });
    const h = new Headers();
    for (const [k, v] of Object.entries(res.headers)) {
      if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
    }
    return {
      status: res.statusCode,
      headers: h,
      body: res.body,
      discard: async () => void (await res.body.dump().catch(() => {})),
    };
  };
}

export function fetchTransport(fetchFn: FetchLike): RangeTransport {
  return async (url, headers, signal) => {
    const res = await fetchFn(url, { headers, signal });
    const body = res.body;
    return {
      status: res.status,
      headers: res.headers,
      body: (body ?? []) as AsyncIterable<Uint8Array>,
      discard: async () => void (await body?.cancel().catch(() => {})),
    };
  };
}
