/**
 * One way to open a NATS connection, for workers and the coordinator's NatsBackend alike:
 * authentication (user/password or token), TLS, and reconnecting forever — a restarted
 * nats-server must cost a retry, never a worker or a run.
 */
import { connect, type ConnectionOptions, type NatsConnection } from 'nats';
import { TransportError, UsageError } from '../../proto/errors.js';

export interface NatsConnectOptions {
  /** nats://host:port, one or several. */
  servers: string | string[];
  user?: string;
  pass?: string;
  token?: string;
  /** PEM texts: `ca` verifies the server (and turns TLS on); `cert` + `key` for a client certificate. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** Connection name shown by the server's monitoring. */
  name?: string;
  /**
   * Keep trying when no server answers yet (a worker pod starting before NATS); without it
   * the first failure is an error at once (the coordinator). @default false
   */
  waitOnFirstConnect?: boolean;
}

export async function natsConnect(o: NatsConnectOptions): Promise<NatsConnection> {
  if (o.token !== undefined && (o.user !== undefined || o.pass !== undefined)) throw new UsageError('NATS: give a token or a user and password, not both');
  if ((o.user === undefined) !== (o.pass === undefined)) throw new UsageError('NATS: a user needs a password and a password needs a user');
  const options: ConnectionOptions = {
    servers: o.servers,
    name: o.name,
    user: o.user,
    pass: o.pass,
    token: o.token,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: o.waitOnFirstConnect ?? false,
    ...(o.tls ? { tls: { ...o.tls } } : {}),
  };
  try {
    return await connect(options);
  } catch (err) {
    const servers = Array.isArray(o.servers) ? o.servers.join(',') : o.servers;
    throw new TransportError(`NATS ${servers}: cannot connect (${(err as Error).message})`, { cause: err });
  }
}

/** Drains a connection (its subscriptions flush and close), or closes it when draining takes over `ms` (no server now). */
export async function drainOrClose(nc: NatsConnection, ms = 2000): Promise<void> {
  if (nc.isClosed()) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([nc.drain().catch(() => {}), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
  if (!nc.isClosed()) await nc.close();
}
