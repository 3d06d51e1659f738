import type { Command } from 'commander';
import { UsageError } from '../../../proto/errors.js';
import { parseBackend } from '../../../worker/gpu/backends.js';
import { jsonLogger } from '../../../worker/log.js';
import type { WorkerOptions } from '../../../worker/start-worker.js';
import { DEFAULT_SUBJECT } from '../../../proto/nats-chunks.js';
import { json, threadsFrom, type CliContext } from '../context.js';
import { parseInteger, parseNumber, readPem, serverList } from '../flags.js';
import type { CommandSpec } from './common.js';

type Opts = Record<string, string | boolean | undefined>;

/** Flags → WorkerOptions, every check before anything starts; messages name the flag. */
export async function workerOptions(o: Opts, env: NodeJS.ProcessEnv = process.env): Promise<WorkerOptions> {
  const grpc = o.grpc as string | undefined;
  const nats = o.nats as string | undefined;
  if (!grpc && !nats && !o.describe) throw new UsageError('worker needs --grpc HOST:PORT and/or --nats URL');
  if (grpc !== undefined) {
    const m = /^(.+):(\d+)$/.exec(grpc);
    if (!m || Number(m[2]) > 65535) throw new UsageError(`--grpc expects HOST:PORT (e.g. 0.0.0.0:50051), got "${grpc}"`);
  }
  for (const f of ['tlsCert', 'tlsKey', 'tlsCa', 'requireClientCert'] as const) {
    if (o[f] !== undefined && !grpc) throw new UsageError(`--${kebab(f)} configures gRPC TLS: it needs --grpc`);
  }
  if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new UsageError('--tls-cert and --tls-key go together');
  if ((o.tlsCa || o.requireClientCert) && !o.tlsCert) throw new UsageError('--tls-ca and --require-client-cert need --tls-cert and --tls-key');
  if (o.requireClientCert && !o.tlsCa) throw new UsageError('--require-client-cert needs --tls-ca, the CA client certificates must chain to');
  const pass = (o.natsPass as string | undefined) ?? env.NEUROMFA_NATS_PASS;
  const token = (o.natsToken as string | undefined) ?? env.NEUROMFA_NATS_TOKEN;
  for (const f of ['subject', 'natsUser', 'natsPass', 'natsToken', 'natsTlsCa'] as const) {
    if (o[f] !== undefined && !nats) throw new UsageError(`--${kebab(f)} configures NATS: it needs --nats`);
  }
  if (token !== undefined && (o.natsUser !== undefined || pass !== undefined)) throw new UsageError('--nats-token excludes --nats-user/--nats-pass');
  if ((o.natsUser === undefined) !== (pass === undefined)) throw new UsageError('--nats-user and --nats-pass (or NEUROMFA_NATS_PASS) go together');
  const subject = (o.subject as string | undefined) ?? DEFAULT_SUBJECT;
  if (!/^[^\s*>.]+(\.[^\s*>.]+)*$/.test(subject)) throw new UsageError(`--subject must be a NATS subject without wildcards, e.g. ${DEFAULT_SUBJECT}; got "${subject}"`);
  const maxMb = parseNumber('--max-message-mb', o.maxMessageMb as string);
  // gRPC lengths are signed 32-bit.
  if (!(maxMb > 0 && maxMb <= 2047)) throw new UsageError(`--max-message-mb must be in (0, 2047], got ${o.maxMessageMb}`);
  return {
    threads: threadsFrom(o.threads as string | undefined),
    partitionBackend: parseBackend((o.backend as string | undefined) ?? 'auto'),
    modelRoot: o.modelRoot as string | undefined,
    maxMessageBytes: Math.floor(maxMb * (1 << 20)),
    grpc: grpc
      ? {
          address: grpc,
          tls: o.tlsCert
            ? {
                cert: await readPem('--tls-cert', o.tlsCert as string),
                key: await readPem('--tls-key', o.tlsKey as string),
                ca: o.tlsCa ? await readPem('--tls-ca', o.tlsCa as string) : undefined,
                requireClientCert: Boolean(o.requireClientCert),
              }
            : undefined,
        }
      : undefined,
    nats: nats
      ? {
          servers: serverList(nats),
          subject,
          user: o.natsUser as string | undefined,
          pass,
          token,
          tls: o.natsTlsCa ? { ca: (await readPem('--nats-tls-ca', o.natsTlsCa as string)).toString('utf8') } : undefined,
        }
      : undefined,
    metrics: o.metricsPort === undefined ? undefined : { port: parseInteger('--metrics-port', o.metricsPort as string, 0, 65535) },
  };
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export const workerCommand = {
  name: 'worker',
  summary: 'serve shards to coordinators over gRPC and/or NATS (JSON logs on stdout; SIGTERM drains and exits 0)',
  configure(cmd: Command) {
    cmd.option('--grpc <host:port>', 'serve gRPC here (neuromfa.v1.Worker and grpc.health.v1), e.g. 0.0.0.0:50051; port 0 picks a free one');
    cmd.option('--nats <url>', 'join the queue group on these NATS servers (comma list), e.g. nats://nats:4222');
    cmd.option('--subject <subject>', `the deployment's NATS subject (default: ${DEFAULT_SUBJECT})`);
    cmd.option('--threads <n>', 'threads of the shard pool (default: all cores)');
    cmd.option(
      '--backend <name>',
      'where partition sums run: auto (the first of webgpu, gl that works here, else f64), f64 (float64 CPU, the reference), ' +
        'or a gpu.js mode: webgpu (Dawn over Vulkan), gl (headless WebGL), webasm (WebAssembly), cpu (gpu.js in JavaScript, for tests). ' +
        'A named backend that cannot run here stops the worker at start (exit 2); a GPU that fails mid-shard falls back to f64 for that shard (default: auto)',
    );
    cmd.option('--describe', 'print what this worker would be (version, threads, the backend it would use, every backend\'s availability and why) as JSON, and exit');
    cmd.option('--model-root <dir>', 'read weight files under this directory only; without it, the worker takes inline bytes only (--ship-bytes)');
    cmd.option('--metrics-port <p>', 'serve Prometheus /metrics and /healthz on this port');
    cmd.option('--max-message-mb <n>', 'largest message received or sent, MB (also the largest inline shard)', '64');
    cmd.option('--tls-cert <file>', 'gRPC: serve TLS with this PEM certificate chain');
    cmd.option('--tls-key <file>', "gRPC: the certificate's PEM private key");
    cmd.option('--tls-ca <file>', 'gRPC: PEM CA that client certificates must chain to');
    cmd.option('--require-client-cert', 'gRPC: refuse clients without a valid certificate (mutual TLS)');
    cmd.option('--nats-user <user>', 'NATS user (with --nats-pass)');
    cmd.option('--nats-pass <password>', 'NATS password; or set NEUROMFA_NATS_PASS, which keeps it out of the process list');
    cmd.option('--nats-token <token>', 'NATS token; or set NEUROMFA_NATS_TOKEN');
    cmd.option('--nats-tls-ca <file>', 'NATS: connect with TLS, verifying the server with this PEM CA');
  },
  async run(ctx: CliContext, _args: string[], o: Opts) {
    const options = await workerOptions(o);
    // Loaded here, not with the CLI: grpc-js and nats cost every other command ~100 ms to load.
    const [{ setLogger }, { describeWorker }, { settlePartitionBackend, startWorker }] = await Promise.all([
      import('@grpc/grpc-js'),
      import('../../../worker/serve.js'),
      import('../../../worker/start-worker.js'),
    ]);
    if (o.describe) {
      const transports = [...(options.grpc ? ['grpc'] : []), ...(options.nats ? ['nats'] : [])];
      ctx.out(json(describeWorker({ ...options, partitionBackend: await settlePartitionBackend(options.partitionBackend ?? 'auto') }, transports)));
      return;
    }
    const log = jsonLogger(ctx.out);
    // grpc-js writes its own errors to stderr; in a worker they belong in the JSON log.
    setLogger({ error: (...a: unknown[]) => log.warn('grpc-js', { message: a.map(String).join(' ') }) } as unknown as Console);
    // Listening before the worker starts: a SIGTERM during start-up (or right after `ready`)
    // stops it cleanly once it has started, instead of killing it mid-way.
    let signalled: NodeJS.Signals | undefined;
    let onSignal = (signal: NodeJS.Signals) => void (signalled = signal);
    const listen = (signal: NodeJS.Signals) => onSignal(signal);
    process.once('SIGTERM', listen);
    process.once('SIGINT', listen);
    const worker = await startWorker({ ...options, log });
    await new Promise<void>((resolve) => {
      onSignal = (signal: NodeJS.Signals) => {
        // A second signal while draining: the operator wants out now.
        process.once('SIGTERM', () => process.exit(1));
        process.once('SIGINT', () => process.exit(1));
        log.info('signal', { signal });
        worker.stop().then(resolve, (err: Error) => {
          log.error('stop failed', { error: err.message });
          resolve();
        });
      };
      if (signalled) onSignal(signalled);
    });
  },
} satisfies CommandSpec;
