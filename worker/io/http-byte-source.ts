import { InputError, IntegrityError, NeuromfaError, TransportError } from '../../proto/errors.js';
import { checkRange, type ByteSource } from './byte-source.js';
import { fetchTransport, undiciTransport, type RangeTransport } from './http-transport.js';
import type { Limiter } from './limiter.js';
import { LinkMeter } from './link-meter.js';
import { readPlanned, type WantedRange } from './ranged-read.js';
import type { LinkModel } from './read-plan.js';

/**
 * ByteSource over HTTP Range requests: one inclusive range per request, and only a 206 whose
 * Content-Range is exactly the range asked for is data. A 200 means a proxy or server
 * ignored the Range header and is sending the whole file (tens of GB for a 12B model): the
 * body is cancelled, never sliced. Transient failures are retried with backoff; the retry
 * rules are pure functions (isRetryable, delayFor) so they are tested without a network.
 */

/**
 * Unwanted bytes read rather than split a request. Measured on a pythia-410m-shaped file
 * (2 KiB and 8 KiB rows), 10 samples: gap 0 reads 17% of the file in 36.5k requests,
 * 4 KiB 22% in 24k, 64 KiB 69% in 568. 4 KiB keeps the bytes near the minimum; raise it
 * (HubOptions.coalesceGapBytes) where round trips cost more than bandwidth.
 */
export const REMOTE_GAP_BYTES = 4 * 1024;

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** Backoff of retry n is baseDelayMs · 2^n, capped at maxDelayMs. */
  baseDelayMs: number;
  /** Cap on any single wait, server hints included (tests set it to a few ms). */
  maxDelayMs: number;
  /** Per-request deadline, headers and body together. */
  timeoutMs: number;
}

/** @default 5 retries, 250 ms doubling, at most 60 s per wait, 120 s per request. */
export const DEFAULT_RETRY: RetryPolicy = { retries: 5, baseDelayMs: 250, maxDelayMs: 60_000, timeoutMs: 120_000 };

/** 408, 429 and 5xx are transient on the hub and CDNs; 501 (not implemented) is not. */
export function isRetryable(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501);
}

/** Retry-After: delta-seconds or an HTTP-date (RFC 9110 §10.2.3), in ms from `now`. */
function retryAfterMs(value: string | null, now: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Seconds until the quota resets, from the hub's `RateLimit: "api";r=0;t=55` (IETF
 * draft-ietf-httpapi-ratelimit-headers, which the hub implements) or the older
 * `RateLimit-Reset: 55`. A window with requests remaining is no reason to wait.
 */
function rateLimitMs(headers: Headers): number | undefined {
  const rl = headers.get('ratelimit');
  if (rl) {
    const t = /(?:^|[;,\s])t=(\d+)/.exec(rl);
    const r = /(?:^|[;,\s])r=(\d+)/.exec(rl);
    if (t && (!r || Number(r[1]) === 0)) return Number(t[1]) * 1000;
  }
  const reset = headers.get('ratelimit-reset');
  return reset && /^\d+$/.test(reset.trim()) ? Number(reset.trim()) * 1000 : undefined;
}

/**
 * Wait before retry `attempt` (0-based): the server's hint (Retry-After, then RateLimit) when
 * it gives one, else exponential backoff; never above policy.maxDelayMs.
 */
export function delayFor(attempt: number, headers?: Headers, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'> = DEFAULT_RETRY, now = Date.now()): number {
  const hint = headers ? (retryAfterMs(headers.get('retry-after'), now) ?? rateLimitMs(headers)) : undefined;
  const wait = hint ?? policy.baseDelayMs * 2 ** attempt;
  return Math.min(policy.maxDelayMs, wait);
}

/** One attempt's outcome: a value, or a reason to try again (with the response headers). */
export type Attempt<T> = { value: T } | { retry: string; headers?: Headers };

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs `attempt` until it yields a value, at most policy.retries extra times. A thrown
 * NeuromfaError is permanent and passes through; the last reason becomes a TransportError.
 */
export async function withRetries<T>(what: string, policy: RetryPolicy, wait: (ms: number) => Promise<void>, attempt: (n: number) => Promise<Attempt<T>>): Promise<T> {
  for (let n = 0; ; n++) {
    const r = await attempt(n);
    if ('value' in r) return r.value;
    if (n >= policy.retries) throw new TransportError(`${what}: ${r.retry} (gave up after ${n + 1} attempts)`);
    await wait(delayFor(n, r.headers, policy));
  }
}

/**
 * fetch that reports network failures (reset, timeout, body cut off) as a retry reason and
 * everything else as a Response. `read` consumes the body inside the same guard.
 */
export async function guardedFetch<T>(fetchFn: FetchLike, url: string, init: RequestInit, timeoutMs: number, read: (res: Response) => Promise<Attempt<T>>): Promise<Attempt<T>> {
  try {
    const res = await fetchFn(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    return await read(res);
  } catch (err) {
    return networkRetry(err);
  }
}

/** A thrown network failure (reset, timeout, body cut off) as a retry reason; our own errors pass. */
export function networkRetry(err: unknown): { retry: string } {
  if (err instanceof NeuromfaError) throw err;
  const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
  return { retry: `network error: ${(err as Error).message}${cause ? ` (${cause})` : ''}` };
}

/** `bytes a-b/total` → numbers; total is undefined for `*`. */
export function parseContentRange(value: string | null): { first: number; last: number; total?: number } | undefined {
  const m = value ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim()) : null;
  if (!m) return undefined;
  return { first: Number(m[1]), last: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

export interface HttpByteSourceOptions {
  name: string;
  size: number;
  /**
   * The URL to read, asked for lazily; called again with `expired = true` after a 403,
   * since signed CDN URLs expire (the hub re-resolves). A plain string never refreshes,
   * and its 403 is an error.
   */
  url: string | ((expired: boolean) => Promise<string>);
  /** Sends the requests through this fetch instead of undici's keep-alive Agent. */
  fetch?: FetchLike;
  /** Headers per URL: the hub passes its token only to its own origin, never the CDN's. */
  headers?: Record<string, string> | ((url: string) => Record<string, string>);
  retry?: Partial<RetryPolicy>;
  sleep?: (ms: number) => Promise<void>;
  /** The origin's bound on requests in flight, shared by every source of a client. */
  limit?: Limiter;
  /** The origin's link as measured so far, shared likewise; planned reads follow it. */
  meter?: LinkMeter;
  /** Called before each HTTP request is sent (stats; may throw to stop a runaway). */
  onRequest?: () => void;
  /** Called with the size of each accepted 206 body. */
  onBytes?: (bytes: number) => void;
  /** Gap read through between strided elements (readRowList's strided path). @default REMOTE_GAP_BYTES */
  coalesceGapBytes?: number;
}

/** A copy of every body chunk a planned read receives (the range cache), and of each finished request. */
export interface RangeTee {
  chunk(at: number, bytes: Uint8Array): Promise<void>;
  done(start: number, end: number): void;
}

/** Re-resolutions allowed per read: one expiry is normal, a loop of them is not. */
const MAX_REFRESHES = 2;

/** A link nobody has measured yet: a transatlantic CDN, sized so early plans are not absurd either way. */
export const DEFAULT_REMOTE_LINK: LinkModel = { rttMs: 50, bytesPerMs: 50_000, maxInFlight: 128, maxRequestBytes: 16 << 20 };

export class HttpByteSource implements ByteSource {
  bytesRead = 0;
  readonly coalesceGapBytes: number;
  readonly name: string;
  readonly size: number;
  private readonly transport: RangeTransport;
  private readonly meter: LinkMeter;
  private readonly policy: RetryPolicy;
  private current?: Promise<string>;
  /** Identical ranges requested concurrently share one request. */
  private readonly inFlight = new Map<string, Promise<Uint8Array>>();

  constructor(private readonly opts: HttpByteSourceOptions) {
    this.name = opts.name;
    this.size = opts.size;
    this.meter = opts.meter ?? new LinkMeter(DEFAULT_REMOTE_LINK);
    this.transport = opts.fetch ? fetchTransport(opts.fetch) : undiciTransport(this.meter.model().maxInFlight);
    this.policy = { ...DEFAULT_RETRY, ...opts.retry };
    this.coalesceGapBytes = opts.coalesceGapBytes ?? REMOTE_GAP_BYTES;
  }

  /** A source whose size is learnt with a `bytes=0-0` probe. */
  static async open(url: string, opts: Omit<HttpByteSourceOptions, 'url' | 'size' | 'name'> & { name?: string } = {}): Promise<HttpByteSource> {
    const probe = new HttpByteSource({ ...opts, name: opts.name ?? url, url, size: Number.MAX_SAFE_INTEGER });
    const total = await probe.fetchRange(0, 1, true);
    return new HttpByteSource({ ...opts, name: opts.name ?? url, url, size: total.total! });
  }

  async read(start: number, end: number, into?: Uint8Array): Promise<Uint8Array> {
    checkRange(this.name, this.size, start, end);
    let bytes: Uint8Array;
    if (start === end) {
      bytes = new Uint8Array(0);
    } else {
      const key = `${start}-${end}`;
      let p = this.inFlight.get(key);
      if (!p) {
        const limit = this.opts.limit ?? ((fn) => fn());
        p = limit(() => this.fetchRange(start, end, false)).then((r) => r.bytes);
        this.inFlight.set(key, p);
        void p.then(() => this.inFlight.delete(key), () => this.inFlight.delete(key));
      }
      bytes = await p;
    }
    this.bytesRead += bytes.length;
    if (!into) return bytes;
    into.set(bytes);
    return into;
  }

  async readRanges(wanted: readonly WantedRange[], tee?: RangeTee): Promise<void> {
    for (const w of wanted) checkRange(this.name, this.size, w.start, w.end);
    await readPlanned(wanted, () => this.meter.model(), async (start, end, deliver) => void (await this.stream(start, end, false, deliver, tee)), this.opts.limit);
    for (const w of wanted) this.bytesRead += w.end - w.start;
  }

  async close(): Promise<void> {}

  /**
   * The URL to use; `stale` is one that just answered 403. Concurrent reads that all hit the
   * same expired URL share one re-resolution: only the first to see it still current
   * replaces it.
   */
  private async url(stale?: string): Promise<string> {
    const u = this.opts.url;
    if (typeof u === 'string') return u;
    const p = this.current;
    if (p && stale !== undefined) {
      const now = await p.catch(() => undefined);
      if (now === stale && this.current === p) this.current = undefined;
    }
    if (!this.current) {
      const next = u(stale !== undefined);
      this.current = next;
      // A failed resolve must not stick: the next read asks again.
      next.catch(() => {
        if (this.current === next) this.current = undefined;
      });
    }
    return this.current;
  }

  private async fetchRange(start: number, end: number, probe: boolean): Promise<{ bytes: Uint8Array; total?: number }> {
    const bytes = new Uint8Array(end - start);
    const total = await this.stream(start, end, probe, (at, chunk) => bytes.set(chunk, at - start));
    return { bytes, total };
  }

  /**
   * One range request with retries, its body handed to `deliver` chunk by chunk as it
   * arrives; resolves with the file size the server stated. Only a 206 whose Content-Range
   * is exactly the range asked for is data.
   */
  private async stream(start: number, end: number, probe: boolean, deliver: (at: number, chunk: Uint8Array) => void, tee?: RangeTee): Promise<number | undefined> {
    const what = `${this.name}: bytes ${start}-${end - 1}`;
    let refreshes = 0;
    let stale: string | undefined;
    const total = await withRetries(what, this.policy, this.opts.sleep ?? sleep, async (): Promise<Attempt<number | undefined>> => {
      const url = await this.url(stale);
      stale = undefined;
      this.opts.onRequest?.();
      const h = this.opts.headers;
      const headers = { ...(typeof h === 'function' ? h(url) : h), Range: `bytes=${start}-${end - 1}` };
      try {
        const sent = performance.now();
        const res = await this.transport(url, headers, AbortSignal.timeout(this.policy.timeoutMs));
        this.meter.firstByte(performance.now() - sent);
        if (res.status !== 206) {
          await res.discard();
          if (res.status === 200) return { retry: 'the server ignored the Range header (200 instead of 206)', headers: res.headers };
          if (res.status === 416) {
            // An unsatisfied range answers `Content-Range: bytes */SIZE` (RFC 9110 §14.4).
            const m = /\/(\d+)\s*$/.exec(res.headers.get('content-range') ?? '');
            const size = m ? Number(m[1]) : undefined;
            throw new InputError(`${what}: range not satisfiable (HTTP 416${size === undefined ? '' : `; the file now has ${size} bytes`})`);
          }
          if (res.status === 403 && typeof this.opts.url !== 'string' && refreshes < MAX_REFRESHES) {
            refreshes++;
            stale = url;
            return { retry: 'URL expired (HTTP 403)' };
          }
          if (isRetryable(res.status)) return { retry: `HTTP ${res.status}`, headers: res.headers };
          throw new TransportError(`${what}: HTTP ${res.status}${res.headers.get('x-error-message') ? ` (${res.headers.get('x-error-message')})` : ''}`);
        }
        const cr = parseContentRange(res.headers.get('content-range'));
        if (!cr || cr.first !== start || cr.last !== end - 1) {
          await res.discard();
          return { retry: `Content-Range ${JSON.stringify(res.headers.get('content-range'))} is not the range asked for` };
        }
        if (!probe && cr.total !== undefined && cr.total !== this.size) {
          await res.discard();
          throw new IntegrityError(`${what}: the file is ${cr.total} bytes, not the ${this.size} it was resolved with (it changed under us)`);
        }
        const flow = this.meter.bodyStarted(end - start);
        let got = 0;
        try {
          for await (const chunk of res.body) {
            if (got + chunk.length > end - start) {
              await res.discard();
              return { retry: `body longer than the range (more than ${end - start} bytes)` };
            }
            deliver(start + got, chunk);
            await tee?.chunk(start + got, chunk);
            got += chunk.length;
          }
        } finally {
          flow.end(got);
        }
        if (got < end - start) return { retry: `truncated body (${got} of ${end - start} bytes)` };
        this.opts.onBytes?.(got);
        return { value: cr.total };
      } catch (err) {
        return networkRetry(err);
      }
    });
    tee?.done(start, end);
    return total;
  }
}
