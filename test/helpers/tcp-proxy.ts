import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP relay on 127.0.0.1 in front of `upstream` that can be frozen: every socket stays
 * open but no byte moves either way, and new connections are accepted and never relayed —
 * what a network partition looks like to both ends (no FIN, no RST, just silence). Bytes
 * sent meanwhile wait in the kernel buffers, so thaw() resumes the streams intact. cut()
 * instead resets every connection, the way a crashed middlebox or a server-side kick does,
 * and can keep resetting new ones for a while (the link down for that long).
 */
export interface TcpProxy {
  readonly port: number;
  /** `127.0.0.1:port` */
  readonly address: string;
  /** Connections accepted so far. */
  readonly connections: number;
  freeze(): void;
  thaw(): void;
  /** Resets every open connection, and those made in the next `downMs`; then relays again. */
  cut(downMs?: number): void;
  close(): Promise<void>;
}

const relay = ([a, b]: [Socket, Socket]) => {
  a.pipe(b);
  b.pipe(a);
};

/** pipe() resumes a paused source on 'drain': unpipe first so it stays paused. */
const hold = ([a, b]: [Socket, Socket]) => {
  a.unpipe(b);
  b.unpipe(a);
  a.pause();
  b.pause();
};

export async function startTcpProxy(upstream: { host?: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let frozen = false;
  let accepted = 0;
  let downUntil = 0;
  const server: Server = createServer((client) => {
    accepted++;
    if (Date.now() < downUntil) return void client.resetAndDestroy();
    const target = connect({ host: upstream.host ?? '127.0.0.1', port: upstream.port });
    const pair: [Socket, Socket] = [client, target];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      target.destroy();
    };
    for (const s of pair) {
      s.on('error', end);
      s.on('close', end);
    }
    if (frozen) hold(pair);
    else relay(pair);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    get connections() {
      return accepted;
    },
    freeze() {
      if (frozen) return;
      frozen = true;
      pairs.forEach(hold);
    },
    thaw() {
      if (!frozen) return;
      frozen = false;
      pairs.forEach(relay);
    },
    cut(downMs = 0) {
      downUntil = Date.now() + downMs;
      for (const [a, b] of pairs) {
        a.resetAndDestroy();
        b.resetAndDestroy();
      }
    },
    close() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
