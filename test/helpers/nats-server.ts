import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real `nats-server` on 127.0.0.1, as nats.js's own tests run one (nst/src/launcher.ts):
 * start() on a free port, restart() on the same port under live connections, stop().
 * The binary comes from PATH (CI installs the distribution's nats-server package).
 */
export interface NatsServerOptions {
  /** Largest message the server accepts (server default 1 MB). */
  maxPayload?: number;
  auth?: { user: string; pass: string } | { token: string };
  /** PEM files: the server presents `cert`/`key` and requires TLS. */
  tls?: { certFile: string; keyFile: string };
  /** JetStream on, stored under the server's temp dir: it survives restart(), as on a real deployment. */
  jetstream?: boolean;
}

/** Why the NATS tests cannot run here, or undefined when nats-server is installed. */
export function natsServerMissing(): string | undefined {
  const r = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  return r.error ? 'nats-server is not installed (apt-get install nats-server): NATS transport tests skipped' : undefined;
}

export class NatsServer {
  private proc?: ChildProcess;
  private exited?: Promise<void>;

  private constructor(
    private readonly dir: string,
    private readonly config: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  static async start(o: NatsServerOptions = {}): Promise<NatsServer> {
    const dir = await mkdtemp(join(tmpdir(), 'neuromfa-nats-'));
    const config = join(dir, 'nats.conf');
    // The first start takes a random port (-1); restarts reuse the one it got.
    const lines = ['listen: "127.0.0.1:-1"'];
    if (o.maxPayload) lines.push(`max_payload: ${o.maxPayload}`);
    if (o.auth && 'token' in o.auth) lines.push(`authorization { token: ${JSON.stringify(o.auth.token)} }`);
    else if (o.auth) lines.push(`authorization { user: ${JSON.stringify(o.auth.user)}, password: ${JSON.stringify(o.auth.pass)} }`);
    if (o.jetstream) lines.push(`jetstream { store_dir: ${JSON.stringify(join(dir, 'jetstream'))} }`);
    if (o.tls) lines.push(`tls { cert_file: ${JSON.stringify(o.tls.certFile)}, key_file: ${JSON.stringify(o.tls.keyFile)}, timeout: 2 }`);
    await writeFile(config, lines.join('\n') + '\n');
    const server = new NatsServer(dir, config, 0);
    const port = await server.launch();
    await writeFile(config, lines.map((l) => (l.startsWith('listen:') ? `listen: "127.0.0.1:${port}"` : l)).join('\n') + '\n');
    (server as { port: number }).port = port;
    return server;
  }

  /** Stops the server and starts it again on the same port; clients see a disconnect, then a reconnect. */
  async restart(downMs = 0): Promise<void> {
    await this.halt();
    if (downMs) await new Promise((r) => setTimeout(r, downMs));
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.halt();
    await rm(this.dir, { recursive: true, force: true });
  }

  private launch(): Promise<number> {
    const proc = spawn('nats-server', ['-c', this.config], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    this.exited = new Promise((r) => proc.once('exit', () => r()));
    return new Promise<number>((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => fail(new Error(`nats-server did not start within 10 s:\n${log}`)), 10_000);
      const fail = (err: Error) => {
        clearTimeout(timer);
        proc.kill('SIGKILL');
        reject(err);
      };
      const early = (code: number | null) => fail(new Error(`nats-server exited with ${code}:\n${log}`));
      proc.once('exit', early);
      proc.stderr!.on('data', (d: Buffer) => {
        log += d.toString();
        const m = /Listening for client connections on [\d.]+:(\d+)/.exec(log);
        if (m && log.includes('Server is ready')) {
          clearTimeout(timer);
          proc.off('exit', early);
          resolve(Number(m[1]));
        }
      });
    });
  }

  private async halt(): Promise<void> {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGTERM');
    const killer = setTimeout(() => this.proc?.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(killer);
  }
}
