/**
 * The worker's gRPC transport: adapts grpc-js to ShardService. Serves neuromfa.v1.Worker
 * (proto/neuromfa.proto) and grpc.health.v1.Health, which says NOT_SERVING until the thread
 * pool has passed its self-test and again from the moment shutdown begins, so Kubernetes
 * routes shards only to workers that can take them.
 */
import { Server, ServerCredentials, status, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { TransportError } from '../../proto/errors.js';
import { WORKER_SERVICE, workerService, type DescribeMessage, type ShardRequest, type ShardResponse } from '../../proto/grpc-service.js';
import type { ShardService } from '../serve.js';

export interface GrpcServerTls {
  /** PEM server certificate chain and its private key. */
  cert: Buffer;
  key: Buffer;
  /** PEM CA bundle that client certificates must chain to (mutual TLS). */
  ca?: Buffer;
  /** Refuse clients without a certificate signed by `ca`. */
  requireClientCert?: boolean;
}

export interface GrpcServerOptions {
  /** host:port to bind; port 0 picks a free one. */
  address: string;
  /** Largest message received or sent, bytes; bigger requests fail with RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  tls?: GrpcServerTls;
  /** Transports this worker serves, for Describe. @default ['grpc'] */
  transports?: string[];
}

export interface GrpcTransport {
  /** The bound port (the one picked when the address asked for 0). */
  readonly port: number;
  /** Stops taking calls, lets the in-flight ones finish, then closes. */
  shutdown(): Promise<void>;
  /** Cancels in-flight calls and closes at once. */
  forceShutdown(): void;
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Both the whole server ('') and the Worker service are reported, as probes may ask for either. */
const HEALTH_NAMES = ['', WORKER_SERVICE];

export async function startGrpcServer(service: ShardService, o: GrpcServerOptions): Promise<GrpcTransport> {
  const server = new Server({
    'grpc.max_receive_message_length': o.maxMessageBytes,
    'grpc.max_send_message_length': o.maxMessageBytes,
    // Coordinators ping every 5 s (worker/backends/grpc.ts) with or without calls: grpc-js
    // servers never answer pings with GOAWAY too_many_pings, so no policy option is needed
    // (backend-grpc.test.ts checks it). The worker sends no pings of its own: pings on a
    // connection draining for shutdown made grpc-js cancel calls still being answered.
  });
  const health = new HealthImplementation(Object.fromEntries(HEALTH_NAMES.map((n) => [n, 'NOT_SERVING' as const])));
  health.addToServer(server);
  let stopping = false;
  let inFlight = 0;
  let drained: (() => void) | undefined;
  server.addService(workerService, {
    ComputeShard(call: ServerUnaryCall<ShardRequest, ShardResponse>, callback: sendUnaryData<ShardResponse>) {
      // Stopping: new shards go elsewhere (UNAVAILABLE is retried on another worker).
      if (stopping) return callback({ code: status.UNAVAILABLE, details: 'the worker is stopping' });
      const abort = new AbortController();
      call.on('cancelled', () => abort.abort(new Error('the client cancelled the call')));
      inFlight++;
      service
        .handleMessage(call.request.task, { transport: 'grpc', signal: abort.signal })
        .then(
          (reply) => callback(null, { reply }),
          (err: Error) => callback({ code: status.INTERNAL, details: err.message }),
        )
        .finally(() => {
          if (--inFlight === 0) drained?.();
        });
    },
    Describe(_call: ServerUnaryCall<Record<string, never>, DescribeMessage>, callback: sendUnaryData<DescribeMessage>) {
      callback(null, service.describe(o.transports ?? ['grpc']));
    },
  });
  const credentials = o.tls
    ? ServerCredentials.createSsl(o.tls.ca ?? null, [{ cert_chain: o.tls.cert, private_key: o.tls.key }], o.tls.requireClientCert ?? false)
    : ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(o.address, credentials, (err, p) => (err ? reject(new TransportError(`--grpc ${o.address}: cannot listen (${err.message})`, { cause: err })) : resolve(p))),
  );
  service.whenReady().then(
    () => {
      if (!stopping) for (const n of HEALTH_NAMES) health.setStatus(n, 'SERVING');
    },
    () => {},
  );
  return {
    port,
    async shutdown() {
      stopping = true;
      for (const n of HEALTH_NAMES) health.setStatus(n, 'NOT_SERVING');
      // The shards in flight are answered before the connections are closed: a GOAWAY while
      // they run let grpc-js clients fail them (RST_STREAM without a status).
      if (inFlight > 0) await new Promise<void>((r) => (drained = r));
      const closed = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      // tryShutdown also waits for open streams, and a health Watch never ends by itself:
      // give streams a moment to see their answers, then close them.
      const settled = await Promise.race([closed.then(() => true), delay(1000).then(() => false)]);
      if (!settled) server.forceShutdown();
      await closed;
    },
    forceShutdown() {
      stopping = true;
      server.forceShutdown();
    },
  };
}
