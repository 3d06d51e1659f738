/**
 * The gRPC service definition of proto/neuromfa.proto, loaded once for the worker's server
 * (worker/transport/grpc-server.ts) and the client backend (worker/backends/grpc.ts).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { WorkerDescription } from './describe.js';

export const WORKER_SERVICE = 'neuromfa.v1.Worker';

/** The .proto sits in proto/ of the package root; this file runs from proto/ or dist/proto/. */
function protoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'proto', 'neuromfa.proto');
    if (existsSync(candidate)) return candidate;
    const here = join(dir, 'neuromfa.proto');
    if (existsSync(here)) return here;
    const up = dirname(dir);
    if (up === dir) throw new Error('proto/neuromfa.proto not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

export interface ShardRequest {
  task: Uint8Array;
}
export interface ShardResponse {
  reply: Uint8Array;
}
/** Describe's message: WorkerDescription's fields, camelCased by proto-loader. */
export type DescribeMessage = WorkerDescription;

export interface WorkerMethods {
  ComputeShard: MethodDefinition<ShardRequest, ShardResponse>;
  Describe: MethodDefinition<Record<string, never>, DescribeMessage>;
}

// longs as Numbers (max_message_bytes), defaults so an empty repeated field is [] not absent.
const definition = loadSync(protoPath(), { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true });

export const workerService = definition[WORKER_SERVICE] as unknown as ServiceDefinition & WorkerMethods;
