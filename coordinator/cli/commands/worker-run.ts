import { UsageError } from '../../../proto/errors.js';
import { DEFAULT_SUBJECT } from '../../../proto/nats-chunks.js';
import { parseBackend } from '../../../worker/gpu/backends.js';
import { jsonLogger } from '../../../worker/log.js';
import type { WorkerOptions } from '../../../worker/start-worker.js';
import { json, threadsFrom, type CliContext } from '../context.js';
import { parseInteger, parseNumber, readPem, serverList } from '../flags.js';
import type { CommandOptions } from './common.js';

/** Flags → WorkerOptions, every check before anything starts; messages name the flag. */
export async function workerOptions(o: CommandOptions, env: NodeJS.ProcessEnv = process.env): Promise<WorkerOptions> {
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

export async function run(ctx: CliContext, _args: string[], o: CommandOptions): Promise<void> {
  const options = await workerOptions(o);
  // Loaded once the flags are checked: a bad flag is one line without loading grpc-js and nats (~100 ms).
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
}
