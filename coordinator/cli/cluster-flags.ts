import type { Command } from 'commander';
import { DEFAULT_SUBJECT } from '../../proto/nats-chunks.js';

/**
 * Flags that send shards to remote workers instead of the local thread pool (remote-backend.ts
 * reads them). Apart from it so that declaring them loads no transport or dispatcher.
 */
export function addClusterFlags(cmd: Command): void {
  cmd.option('--workers <list>', 'gRPC workers: comma-separated grpc://host:port, or dns:///service:port (round robin over a headless service)');
  cmd.option('--nats <url>', 'NATS server of a worker deployment (nats://host:4222)');
  cmd.option('--subject <s>', 'NATS subject the workers listen on', DEFAULT_SUBJECT);
  cmd.option(
    '--model-root <dir>',
    'the model directory the workers mount as their --model-root: local models must lie under it and are sent to workers relative to it (without it, workers get absolute paths)',
  );
  cmd.option('--ship-bytes', "the coordinator reads the checkpoint and sends each shard its rows or weight bytes (workers that reach neither the models nor the hub)");
  cmd.option('--shard-deadline <s>', 'seconds one shard may take on one worker before it is retried elsewhere', '600');
  cmd.option('--tls-ca <file>', 'gRPC: CA certificate that signed the workers\' certificates (enables TLS)');
  cmd.option('--tls-cert <file>', 'gRPC: client certificate, for mutual TLS');
  cmd.option('--tls-key <file>', 'gRPC: client key, for mutual TLS');
  cmd.option('--nats-user <user>', 'NATS user (password from NEUROMFA_NATS_PASS)');
  cmd.option('--nats-token <token>', 'NATS token (or NEUROMFA_NATS_TOKEN)');
  cmd.option('--nats-tls-ca <file>', 'NATS: CA certificate of the server (enables TLS)');
  cmd.option('--ack-wait <s>', 'NATS with JetStream: seconds a worker may go silent (dead, cut off) before the server gives its shard to another worker (default 30)');
  cmd.option(
    '--run-id <id>',
    'NATS with JetStream: name of this run (default: a hash of the command line and directory, so running the same command again collects what its shards stored)',
  );
}
