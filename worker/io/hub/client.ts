import { InputError, TransportError } from '../../../proto/errors.js';
import { DEFAULT_REMOTE_LINK, guardedFetch, isRetryable, withRetries, type Attempt } from '../http-byte-source.js';
import { createLimiter, type Limiter } from '../limiter.js';
import { LinkMeter } from '../link-meter.js';
import { hubError } from './errors.js';
import type { ResolvedHubOptions } from './options.js';

/**
 * The hub's HTTP API, as it really behaves: JSON APIs under /api, file resolution under
 * /OWNER/NAME/resolve/REV/FILE answering LFS files with a 302 to a signed CDN URL. Every
 * request goes through here (or through an HttpByteSource sharing `limit` and `stats`),
 * so the token rule, retries, the concurrency bound and the request count live in one place.
 */

export interface HubStats {
  requests: number;
  /** Body bytes of range responses (the tensor and header bytes actually downloaded). */
  bytesFetched: number;
  /** The CDN link as the read planner last saw it (measured, or its defaults). */
  readonly link: { rttMs: number; mbPerSec: number };
}

export interface TreeFile {
  path: string;
  size: number;
  /** The git blob id. */
  oid: string;
  /** sha256 of the content, for LFS files (all weight files on the hub are). */
  sha256?: string;
}

export interface ResolvedFile {
  /** Where the bytes are: the signed CDN URL, or the resolve URL itself for non-LFS files. */
  url: string;
  commit?: string;
  /** X-Linked-Etag: the LFS sha256. */
  sha256?: string;
  size?: number;
}

export interface HubContext {
  repo: string;
  revision: string;
  file?: string;
}

/** Same-origin redirects followed per request (the hub's 307s for renamed repos). */
const MAX_REDIRECTS = 5;

const encodePath = (p: string) => p.split('/').map(encodeURIComponent).join('/');

/** `Link: <url>; rel="next"` → url (RFC 8288), resolved against the request URL. */
export function nextLink(link: string | null, base: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (m && /(?:^|;)\s*rel\s*=\s*"?next"?\s*(?:;|$)/i.test(m[2])) return new URL(m[1], base).toString();
  }
  return undefined;
}

const unquote = (etag: string | null) => etag?.replace(/^W\//, '').replace(/^"|"$/g, '') || undefined;

export class HubClient {
  readonly stats: HubStats;
  readonly limit: Limiter;
  /** Range requests in flight (keep-alive connections to the CDN), apart from the API's bound. */
  readonly rangeLimit: Limiter;
  /** The CDN link as measured so far in this process; the read planner follows it. */
  readonly meter: LinkMeter;
  readonly origin: string;

  constructor(readonly opts: ResolvedHubOptions) {
    this.limit = createLimiter(opts.maxConcurrent);
    this.rangeLimit = createLimiter(opts.rangesInFlight);
    this.origin = new URL(opts.endpoint).origin;
    const link = { ...DEFAULT_REMOTE_LINK, maxInFlight: opts.rangesInFlight, ...(opts.holeBytes !== undefined ? { holeBytesOverride: opts.holeBytes } : {}) };
    this.meter = new LinkMeter(link, this.origin);
    const meter = this.meter;
    this.stats = {
      requests: 0,
      bytesFetched: 0,
      get link() {
        const m = meter.model();
        return { rttMs: Math.round(m.rttMs * 10) / 10, mbPerSec: Math.round(m.bytesPerMs / 100) / 10 };
      },
    };
  }

  /** The token goes to the hub's origin only: a redirect target (the CDN) never sees it. */
  headersFor(url: string): Record<string, string> {
    return this.opts.token && new URL(url).origin === this.origin ? { Authorization: `Bearer ${this.opts.token}` } : {};
  }

  /** Counts a request against the per-checkpoint bound. */
  count(): void {
    if (++this.stats.requests > this.opts.maxRequests) {
      throw new TransportError(`more than ${this.opts.maxRequests} HTTP requests for one checkpoint; stopping (raise maxRequests if this is expected)`);
    }
  }

  resolveUrl(repo: string, revision: string, file: string): string {
    return `${this.opts.endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${encodePath(file)}`;
  }

  /**
   * One logical request with retries; same-origin redirects are followed here with the
   * token, a cross-origin one is handed to `read` as it is (never followed with the token).
   */
  private async request<T>(url: string, method: 'GET' | 'HEAD', ctx: HubContext, read: (res: Response, url: string) => Promise<Attempt<T>>): Promise<T> {
    const what = `${method} ${url}`;
    return withRetries(what, this.opts.retry, this.opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))), async () => {
      let at = url;
      for (let hop = 0; ; hop++) {
        this.count();
        const res = await this.limit(() =>
          guardedFetch(this.opts.fetch, at, { method, headers: this.headersFor(at), redirect: 'manual' }, this.opts.retry.timeoutMs, async (r) => ({ value: r })),
        );
        if (!('value' in res)) return res;
        const r = res.value;
        const location = r.headers.get('location');
        if (r.status >= 300 && r.status < 400 && location) {
          const target = new URL(location, at);
          if (target.origin === this.origin) {
            await r.body?.cancel().catch(() => {});
            if (hop >= MAX_REDIRECTS) throw new TransportError(`${what}: more than ${MAX_REDIRECTS} redirects`);
            at = target.toString();
            continue;
          }
          return read(r, at);
        }
        if (r.ok) return read(r, at);
        await r.body?.cancel().catch(() => {});
        if (isRetryable(r.status)) return { retry: `HTTP ${r.status}`, headers: r.headers };
        throw hubError(r, what, ctx);
      }
    });
  }

  private async json(res: Response, what: string): Promise<Attempt<unknown>> {
    const text = await res.text();
    try {
      return { value: JSON.parse(text) };
    } catch {
      // A proxy's HTML error page, or a body cut short: worth another try.
      return { retry: `${what}: response is not JSON` };
    }
  }

  /** Every file at the top of `revision`, following `Link: rel="next"` pages. */
  async tree(repo: string, revision: string): Promise<TreeFile[]> {
    const files: TreeFile[] = [];
    let url: string | undefined = `${this.opts.endpoint}/api/models/${repo}/tree/${encodeURIComponent(revision)}`;
    for (let page = 0; url; page++) {
      if (page > 10_000) throw new TransportError(`${url}: the tree listing does not end`);
      const { items, next }: { items: unknown; next?: string } = await this.request(url, 'GET', { repo, revision }, async (res, at) => {
        if (!res.ok) return { retry: `unexpected HTTP ${res.status}` };
        const body = await this.json(res, at);
        if (!('value' in body)) return body;
        return { value: { items: body.value, next: nextLink(res.headers.get('link'), at) } };
      });
      if (!Array.isArray(items)) throw new InputError(`hf://${repo}@${revision}: the tree API did not return a list`);
      for (const it of items as Array<Record<string, any>>) {
        if (it?.type !== 'file' || typeof it.path !== 'string') continue;
        const sha256 = typeof it.lfs?.oid === 'string' ? it.lfs.oid : undefined;
        files.push({ path: it.path, size: Number(it.size), oid: String(it.oid), ...(sha256 ? { sha256 } : {}) });
      }
      // A next link to another origin would carry the token away: refuse it.
      if (next && new URL(next).origin !== this.origin) throw new TransportError(`${url}: pagination link points to another origin (${new URL(next).origin})`);
      url = next;
    }
    return files;
  }

  /** Branches of the repository (`/api/models/OWNER/NAME/refs`). */
  async branches(repo: string): Promise<Array<{ name: string; commit: string }>> {
    const body = await this.request(`${this.opts.endpoint}/api/models/${repo}/refs`, 'GET', { repo, revision: 'main' }, (res, at) => this.json(res, at));
    const list = (body as { branches?: unknown })?.branches;
    if (!Array.isArray(list)) throw new InputError(`hf://${repo}: the refs API returned no branch list`);
    return list
      .filter((b): b is { name: string; targetCommit: string } => typeof b?.name === 'string' && typeof b?.targetCommit === 'string')
      .map((b) => ({ name: b.name, commit: b.targetCommit }));
  }

  /** A small file's text and the commit the revision points at (X-Repo-Commit). */
  async text(repo: string, revision: string, file: string): Promise<{ text: string; commit?: string }> {
    const ctx = { repo, revision, file };
    type First = { text?: string; redirect?: string; commit?: string };
    const first = await this.request<First>(this.resolveUrl(repo, revision, file), 'GET', ctx, async (res, at) => {
      const commit = res.headers.get('x-repo-commit') ?? undefined;
      if (res.status === 200) return { value: { text: await res.text(), commit } };
      // An LFS-stored small file: the CDN URL is fetched without the token.
      return { value: { redirect: new URL(res.headers.get('location')!, at).toString(), commit } };
    });
    if (first.text !== undefined) return { text: first.text, commit: first.commit };
    const text = await this.request(first.redirect!, 'GET', ctx, async (res) => ({ value: await res.text() }));
    return { text, commit: first.commit };
  }

  /** Where a file's bytes are: HEAD on resolve, reading the 302's X-Linked-* headers. */
  async resolve(repo: string, revision: string, file: string): Promise<ResolvedFile> {
    const url = this.resolveUrl(repo, revision, file);
    return this.request(url, 'HEAD', { repo, revision, file }, async (res, at) => {
      const commit = res.headers.get('x-repo-commit') ?? undefined;
      const size = res.headers.get('x-linked-size') ?? (res.status === 200 ? res.headers.get('content-length') : null);
      const out: ResolvedFile = {
        url: res.status === 200 ? at : new URL(res.headers.get('location')!, at).toString(),
        ...(commit ? { commit } : {}),
        ...(unquote(res.headers.get('x-linked-etag')) ? { sha256: unquote(res.headers.get('x-linked-etag')) } : {}),
        ...(size !== null && /^\d+$/.test(size) ? { size: Number(size) } : {}),
      };
      return { value: out };
    });
  }
}
