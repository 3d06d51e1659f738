import type { Command } from 'commander';
import { DEFAULT_SUBJECT } from '../../../proto/nats-chunks.js';
import { runFrom, type CommandSpec } from './common.js';

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
      'where partition sums run: auto (gl where it works here, else f64; webgpu only when named: slower than f64 in whole runs on an H200), f64 (float64 CPU, the reference), ' +
        'or a gpu.js mode: webgpu (Dawn over Vulkan), gl (headless WebGL), webasm (WebAssembly), cpu (gpu.js in JavaScript, for tests). ' +
        'A named backend that cannot run here stops the worker at start (exit 2); a GPU that fails mid-shard falls back to f64 for that shard (default: auto)',
    );
    cmd.option('--describe', 'print what this worker would be (version, threads, the backend it would use, every backend\'s availability and why) as JSON, and exit');
    cmd.option('--model-root <dir>', 'read local weight files under this directory only; without it, the worker reads hub models (HF_TOKEN, HF_ENDPOINT, NEUROMFA_CACHE from its environment) and --ship-bytes shards only');
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
  run: runFrom(() => import('./worker-run.js')),
} satisfies CommandSpec;
