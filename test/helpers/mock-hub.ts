import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/**
 * A Hugging Face hub on loopback, as the real one behaves, with TWO origins: the hub
 * (APIs and /resolve/) and the CDN that /resolve/ redirects LFS files to. Tests check the
 * token reaches the first and never the second, so they must be different servers.
 *  - GET /api/models/O/N/tree/REV  paginated, `Link: <…?cursor=K>; rel="next"`
 *  - GET /api/models/O/N/refs      {branches: [{name, ref, targetCommit}], tags: [], converts: []}
 *  - GET|HEAD /O/N/resolve/REV/F   LFS: 302 to the CDN with X-Repo-Commit, X-Linked-Etag,
 *                                  X-Linked-Size; small files: 200 with X-Repo-Commit
 *  - GET /blobs/SHA256?epoch=E     206 + Content-Range, 416 past the end, 403 once expired
 * Errors carry X-Error-Code (GatedRepo, RepoNotFound, RevisionNotFound, EntryNotFound).
 * Faults are injected per origin: a status (429 with Retry-After, 503), a CDN that ignores
 * Range (200), a body cut short. Every request is logged with its Authorization header.
 */

export type Origin = 'hub' | 'cdn';

export interface MockFile {
  bytes: Uint8Array;
  lfs: boolean;
  sha256: string;
  /** git blob id: sha1("blob <size>\0" + bytes), as git computes it. */
  oid: string;
}

export interface MockRepo {
  id: string;
  commits: Map<string, Map<string, MockFile>>;
  branches: Map<string, string>;
  /** Set: the repo is gated, and only this token may read it. */
  gatedToken?: string;
}

export type Fault =
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  | { kind: 'ignore-range' }
  | { kind: 'truncate' };

export interface LoggedRequest {
  origin: Origin;
  method: string;
  path: string;
  range?: string;
  authorization?: string;
  status: number;
}

interface PendingFault {
  origin: Origin;
  fault: Fault;
  times: number;
  match?: RegExp;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const gitOid = (b: Uint8Array) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
/** Like the hub's .gitattributes: weights go to LFS, small text stays in git. */
const defaultLfs = (path: string) => /\.(safetensors|bin|pt|h5|msgpack)$/.test(path);

export class MockHub {
  readonly log: LoggedRequest[] = [];
  readonly bytesServed: Record<Origin, number> = { hub: 0, cdn: 0 };
  /** Highest number of requests in flight at once, per origin. */
  readonly maxInFlight: Record<Origin, number> = { hub: 0, cdn: 0 };
  /** Requests and body bytes per client address (both origins), so a test sees who read what. */
  readonly byClient = new Map<string, { requests: number; bytes: number }>();
  treePageSize = 2;
  /** Added to every response, for benchmarks. */
  latencyMs = 0;
  /** Set: every body of both origins shares one link of this many bytes per second (benchmarks). */
  linkBytesPerSec?: number;
  /** When the shared link is next free (performance.now() ms). */
  private linkFreeAt = 0;
  private readonly inFlight: Record<Origin, number> = { hub: 0, cdn: 0 };
  private readonly repos = new Map<string, MockRepo>();
  private readonly blobs = new Map<string, Uint8Array>();
  private readonly faults: PendingFault[] = [];
  private epoch = 0;
  private commitSeq = 0;

  private constructor(
    private readonly hubServer: Server,
    private readonly cdnServer: Server,
    readonly hubUrl: string,
    readonly cdnUrl: string,
  ) {}

  /** Both origins on free ports of `host` (another address than loopback: a network namespace's). */
  static async start(host = '127.0.0.1'): Promise<MockHub> {
    const urlHost = host.includes(':') ? `[${host}]` : host;
    const listen = async (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
      const s = createServer(handler);
      await new Promise<void>((r) => s.listen(0, host, r));
      return { s, url: `http://${urlHost}:${(s.address() as AddressInfo).port}` };
    };
    let hub: MockHub | undefined;
    const h = await listen((req, res) => void hub!.handle('hub', req, res));
    const c = await listen((req, res) => void hub!.handle('cdn', req, res));
    hub = new MockHub(h.s, c.s, h.url, c.url);
    return hub;
  }

  async stop(): Promise<void> {
    for (const s of [this.hubServer, this.cdnServer]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  /** Adds a commit holding `files` to repo `id` (created if new) and points `branch` at it. */
  addCommit(id: string, files: Record<string, Uint8Array>, opts: { branch?: string; gatedToken?: string; lfs?: (path: string) => boolean } = {}): string {
    let repo = this.repos.get(id);
    if (!repo) {
      repo = { id, commits: new Map(), branches: new Map() };
      this.repos.set(id, repo);
    }
    if (opts.gatedToken) repo.gatedToken = opts.gatedToken;
    const lfs = opts.lfs ?? defaultLfs;
    const content = new Map<string, MockFile>();
    for (const [path, bytes] of Object.entries(files)) {
      const f = { bytes, lfs: lfs(path), sha256: sha256(bytes), oid: gitOid(bytes) };
      content.set(path, f);
      if (f.lfs) this.blobs.set(f.sha256, bytes);
    }
    const commit = createHash('sha1').update(`${id}\0${this.commitSeq++}\0${[...content].map(([p, f]) => `${p}:${f.sha256}`).join(',')}`).digest('hex');
    repo.commits.set(commit, content);
    repo.branches.set(opts.branch ?? 'main', commit);
    return commit;
  }

  /** A commit of every file in `dir` (a fixture checkpoint). */
  async addCommitFromDir(id: string, dir: string, opts: { branch?: string; gatedToken?: string } = {}): Promise<string> {
    const files: Record<string, Uint8Array> = {};
    // A Buffer is a Uint8Array already: no copy (a benchmark serves a dozen 800 MB files).
    for (const name of await readdir(dir)) files[name] = await readFile(join(dir, name));
    return this.addCommit(id, files, opts);
  }

  setBranch(id: string, branch: string, commit: string): void {
    this.repos.get(id)!.branches.set(branch, commit);
  }

  /** The next `times` requests to `origin` (whose path matches) get `fault`. */
  inject(origin: Origin, fault: Fault, opts: { times?: number; match?: RegExp } = {}): void {
    this.faults.push({ origin, fault, times: opts.times ?? 1, match: opts.match });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Every CDN URL handed out so far now answers 403, as a signed URL past its expiry. */
  expireUrls(): void {
    this.epoch++;
  }

  requests(origin?: Origin, path?: RegExp): LoggedRequest[] {
    return this.log.filter((r) => (!origin || r.origin === origin) && (!path || path.test(r.path)));
  }

  resetCounters(): void {
    this.log.length = 0;
    this.bytesServed.hub = this.bytesServed.cdn = 0;
    this.maxInFlight.hub = this.maxInFlight.cdn = 0;
    this.byClient.clear();
  }

  // ---- serving -------------------------------------------------------------------------------

  private async handle(origin: Origin, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url!, origin === 'hub' ? this.hubUrl : this.cdnUrl);
    const entry: LoggedRequest = { origin, method: req.method!, path: url.pathname + url.search, status: 0 };
    if (req.headers.range) entry.range = req.headers.range;
    if (req.headers.authorization) entry.authorization = req.headers.authorization;
    this.log.push(entry);
    const client = this.clientCounter(req);
    client.requests++;
    this.inFlight[origin]++;
    this.maxInFlight[origin] = Math.max(this.maxInFlight[origin], this.inFlight[origin]);
    res.on('close', () => this.inFlight[origin]--);
    const send = (status: number, headers: Record<string, string | number>, body?: Uint8Array | string) => {
      entry.status = status;
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      res.writeHead(status, { ...headers, 'Content-Length': bytes?.length ?? 0 });
      if (req.method !== 'HEAD' && bytes) {
        this.bytesServed[origin] += bytes.length;
        client.bytes += bytes.length;
        if (this.linkBytesPerSec) void this.paced(res, bytes);
        else res.end(bytes);
      } else {
        res.end();
      }
    };
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));

    const fault = this.takeFault(origin, entry.path);
    if (fault?.kind === 'status') return send(fault.status, fault.headers ?? {}, `injected ${fault.status}`);
    try {
      if (origin === 'cdn') return this.serveCdn(url, req, res, send, fault, entry);
      return this.serveHub(url, req, send, fault);
    } catch (err) {
      return send(500, {}, String(err));
    }
  }

  /**
   * Writes a body through the shared link: each 64 KiB piece takes its turn on the link and
   * is sent when the link would have finished moving it, so concurrent bodies share the rate.
   */
  private async paced(res: ServerResponse, bytes: Uint8Array): Promise<void> {
    const perMs = this.linkBytesPerSec! / 1000;
    for (let at = 0; at < bytes.length && !res.destroyed; at += 64 << 10) {
      const piece = bytes.subarray(at, Math.min(bytes.length, at + (64 << 10)));
      const now = performance.now();
      // Up to 10 ms of an idle link's time is owed back, so timer lateness does not slow the link.
      this.linkFreeAt = Math.max(now - 10, this.linkFreeAt) + piece.length / perMs;
      const wait = this.linkFreeAt - now;
      if (wait >= 2) await new Promise((r) => setTimeout(r, wait));
      if (!res.write(piece)) await new Promise((r) => res.once('drain', r));
    }
    res.end();
  }

  private clientCounter(req: IncomingMessage): { requests: number; bytes: number } {
    const addr = req.socket.remoteAddress ?? 'unknown';
    let c = this.byClient.get(addr);
    if (!c) this.byClient.set(addr, (c = { requests: 0, bytes: 0 }));
    return c;
  }

  private takeFault(origin: Origin, path: string): Fault | undefined {
    const i = this.faults.findIndex((f) => f.origin === origin && (!f.match || f.match.test(path)));
    if (i < 0) return undefined;
    const f = this.faults[i];
    if (--f.times <= 0) this.faults.splice(i, 1);
    return f.fault;
  }

  private serveHub(url: URL, req: IncomingMessage, send: Send, fault: Fault | undefined): void {
    const err = (status: number, code: string, message: string) => send(status, { 'X-Error-Code': code, 'X-Error-Message': message }, JSON.stringify({ error: message }));
    const api = /^\/api\/models\/([^/]+)\/([^/]+)\/(tree|refs)(?:\/(.+))?$/.exec(url.pathname);
    const resolve = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const m = api ?? resolve;
    if (!m) return send(404, {}, 'no such route');
    const id = `${m[1]}/${m[2]}`;
    const repo = this.repos.get(id);
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    // The real hub answers 401 (not 404) to anonymous clients for a repo it will not show.
    if (!repo) return err(token ? 404 : 401, 'RepoNotFound', `Repository Not Found for url: ${url}.`);
    if (repo.gatedToken && token !== repo.gatedToken) {
      return err(token ? 403 : 401, 'GatedRepo', `Access to model ${id} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
    }
    if (api?.[3] === 'refs') {
      const branches = [...repo.branches].map(([name, c]) => ({ name, ref: `refs/heads/${name}`, targetCommit: c }));
      return send(200, { 'Content-Type': 'application/json' }, JSON.stringify({ branches, tags: [], converts: [] }));
    }
    const rev = decodeURIComponent((api ? api[4] : resolve![3]) ?? '');
    const commit = repo.branches.get(rev) ?? (repo.commits.has(rev) ? rev : undefined);
    if (!commit) return err(404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    const files = repo.commits.get(commit)!;
    if (api) {
      const all = [...files].map(([path, f]) => ({ type: 'file', oid: f.oid, size: f.bytes.length, path, ...(f.lfs ? { lfs: { oid: f.sha256, size: f.bytes.length, pointerSize: 134 } } : {}) }));
      const from = Number(url.searchParams.get('cursor') ?? 0);
      const page = all.slice(from, from + this.treePageSize);
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (from + this.treePageSize < all.length) headers.Link = `<${this.hubUrl}${url.pathname}?cursor=${from + this.treePageSize}>; rel="next"`;
      return send(200, headers, JSON.stringify(page));
    }
    const path = resolve![4].split('/').map(decodeURIComponent).join('/');
    const f = files.get(path);
    if (!f) return err(404, 'EntryNotFound', `${path} does not exist on "${rev}"`);
    const common = { 'X-Repo-Commit': commit, ETag: `"${f.lfs ? f.sha256 : f.oid}"` };
    if (f.lfs) {
      const location = `${this.cdnUrl}/blobs/${f.sha256}?epoch=${this.epoch}`;
      return send(302, { ...common, Location: location, 'X-Linked-Etag': `"${f.sha256}"`, 'X-Linked-Size': String(f.bytes.length) }, `Found. Redirecting to ${location}`);
    }
    return this.sendRange(req, f.bytes, send, fault, common);
  }

  private serveCdn(url: URL, req: IncomingMessage, res: ServerResponse, send: Send, fault: Fault | undefined, entry: LoggedRequest): void {
    const m = /^\/blobs\/([0-9a-f]{64})$/.exec(url.pathname);
    const bytes = m ? this.blobs.get(m[1]) : undefined;
    if (!bytes) return send(404, {}, 'NoSuchKey');
    if (Number(url.searchParams.get('epoch')) < this.epoch) return send(403, { 'Content-Type': 'application/xml' }, '<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
    if (fault?.kind === 'truncate') {
      // Announce the whole range, send half of it, then drop the connection.
      const r = parseRange(req.headers.range, bytes.length) ?? [0, bytes.length - 1];
      const body = bytes.subarray(r[0], r[1] + 1);
      entry.status = 206;
      res.writeHead(206, { 'Content-Length': body.length, 'Content-Range': `bytes ${r[0]}-${r[1]}/${bytes.length}` });
      res.write(body.subarray(0, body.length >> 1));
      this.bytesServed.cdn += body.length >> 1;
      this.clientCounter(req).bytes += body.length >> 1;
      setImmediate(() => res.socket?.destroy());
      return;
    }
    return this.sendRange(req, bytes, send, fault, {});
  }

  private sendRange(req: IncomingMessage, bytes: Uint8Array, send: Send, fault: Fault | undefined, headers: Record<string, string>): void {
    if (!req.headers.range || fault?.kind === 'ignore-range') return send(200, headers, bytes);
    const r = parseRange(req.headers.range, bytes.length);
    if (!r) return send(416, { ...headers, 'Content-Range': `bytes */${bytes.length}` });
    return send(206, { ...headers, 'Content-Range': `bytes ${r[0]}-${r[1]}/${bytes.length}` }, bytes.subarray(r[0], r[1] + 1));
  }
}

type Send = (status: number, headers: Record<string, string | number>, body?: Uint8Array | string) => void;

/** `bytes=a-b` / `bytes=a-` → inclusive [a, b] clamped to the size; undefined if unsatisfiable. */
function parseRange(header: string | undefined, size: number): [number, number] | undefined {
  const m = /^bytes=(\d+)-(\d*)$/.exec(header ?? '');
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return a < size && a <= b ? [a, b] : undefined;
}
