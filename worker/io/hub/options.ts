import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../../proto/errors.js';
import { DEFAULT_REMOTE_LINK, DEFAULT_RETRY, type FetchLike, type RetryPolicy } from '../http-byte-source.js';

/** How to reach the hub; every unset field has an environment or built-in default. */
export interface HubOptions {
  /** Every request, ranges included, goes through this fetch. @default globalThis.fetch for the API, undici's keep-alive Agent for ranges */
  fetch?: FetchLike;
  /** Our cache of headers, indexes and byte ranges. @default $NEUROMFA_CACHE or ~/.cache/neuromfa */
  cacheDir?: string;
  /** The user's Hugging Face cache, read when a file is already there. @default $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub */
  hfCacheDir?: string;
  /** @default $HF_ENDPOINT or https://huggingface.co */
  endpoint?: string;
  /** Sent as `Authorization: Bearer` to the endpoint's origin only. @default $HF_TOKEN ('' means none) */
  token?: string;
  retry?: Partial<RetryPolicy>;
  /** Injected by tests so retries take no wall time. */
  sleep?: (ms: number) => Promise<void>;
  /** Concurrent API requests (tree, resolve, configs) per checkpoint. @default 8 */
  maxConcurrent?: number;
  /** Range requests in flight per checkpoint, on keep-alive connections. @default $NEUROMFA_HUB_CONCURRENCY or 128 */
  rangesInFlight?: number;
  /** Hard bound on HTTP requests per checkpoint, so a bug cannot hammer the hub. @default 100000 */
  maxRequests?: number;
  /** Unwanted bytes read between two wanted rows rather than split a request, fixed. @default $NEUROMFA_HUB_GAP_KB × 1024, or derived by the read planner from the measured link */
  holeBytes?: number;
  /** Where the defaults are read from. @default process.env */
  env?: NodeJS.ProcessEnv;
}

export interface ResolvedHubOptions {
  fetch: FetchLike;
  /** Set only when the caller injected a fetch: range requests then use it too. */
  rangeFetch?: FetchLike;
  cacheDir: string;
  hfCacheDir: string;
  endpoint: string;
  token?: string;
  retry: RetryPolicy;
  sleep?: (ms: number) => Promise<void>;
  maxConcurrent: number;
  rangesInFlight: number;
  maxRequests: number;
  holeBytes?: number;
}

export function resolveHubOptions(opts: HubOptions): ResolvedHubOptions {
  const env = opts.env ?? process.env;
  const home = () => homedir();
  const hfHome = env.HF_HOME || join(env.XDG_CACHE_HOME || join(home(), '.cache'), 'huggingface');
  const token = opts.token ?? env.HF_TOKEN;
  return {
    fetch: opts.fetch ?? ((u, i) => fetch(u, i)),
    ...(opts.fetch ? { rangeFetch: opts.fetch } : {}),
    cacheDir: opts.cacheDir ?? (env.NEUROMFA_CACHE || join(home(), '.cache', 'neuromfa')),
    hfCacheDir: opts.hfCacheDir ?? (env.HF_HUB_CACHE || join(hfHome, 'hub')),
    endpoint: (opts.endpoint ?? (env.HF_ENDPOINT || 'https://huggingface.co')).replace(/\/+$/, ''),
    token: token ? token : undefined,
    retry: { ...DEFAULT_RETRY, ...opts.retry },
    sleep: opts.sleep,
    maxConcurrent: opts.maxConcurrent ?? 8,
    rangesInFlight: opts.rangesInFlight ?? envInteger(env, 'NEUROMFA_HUB_CONCURRENCY', 1, 256) ?? DEFAULT_REMOTE_LINK.maxInFlight,
    maxRequests: opts.maxRequests ?? 100_000,
    ...holeOf(opts.holeBytes ?? kib(envInteger(env, 'NEUROMFA_HUB_GAP_KB', 0, 1 << 20))),
  };
}

const kib = (v: number | undefined) => (v === undefined ? undefined : v * 1024);
const holeOf = (v: number | undefined) => (v === undefined ? {} : { holeBytes: v });

/**
 * A tuning knob from the environment: round trips against bytes read, which depends on the
 * link (a far-away CDN wants more requests in flight and wider coalescing).
 */
function envInteger(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new UsageError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return v;
}
