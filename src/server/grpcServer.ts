import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { protoPath as healthProtoPath } from 'grpc-health-check';

import { SequenceServiceService } from '../generated/stepframe/v1/sequence_service.js';
import type { Config } from './config.js';
import { generateSequence } from './generateSequenceHandler.js';
import type { Lifecycle } from './lifecycle.js';
import { listModelsHandler } from './listModelsHandler.js';
import { clampLongDeadlines } from './longDeadlines.js';
import type { Logger } from './logger.js';
import { serverStreaming } from './serverStreaming.js';
import type { Telemetry } from './telemetry.js';

/** proto/ at the repository (or image) root, from src/server or dist/src/server. */
export const PROTO_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (dir !== dirname(dir) && !existsSync(join(dir, 'proto', 'stepframe'))) dir = dirname(dir);
  return join(dir, 'proto');
})();

export interface GrpcServer {
  server: grpc.Server;
  port: number;
}

function credentials(config: Config): grpc.ServerCredentials {
  if (!config.tlsCert) return grpc.ServerCredentials.createInsecure();
  const rootCerts = config.tlsClientCa ? readFileSync(config.tlsClientCa) : null;
  return grpc.ServerCredentials.createSsl(rootCerts, [{ cert_chain: readFileSync(config.tlsCert), private_key: readFileSync(config.tlsKey) }], Boolean(rootCerts));
}

/** Streams one connection may hold beyond the sequences admission can take: health checks, ListModels, reflection. */
export const CONTROL_STREAMS = 16;

/**
 * grpc-js options from the config. HTTP/2's concurrent streams per connection are bounded by what
 * admission can hold (active + queued sequences) plus the control calls: more GenerateSequence
 * streams than that would only be refused RESOURCE_EXHAUSTED, and without a bound one connection
 * could open thousands of streams, each holding a decoded request.
 */
export function serverOptions(config: Config): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': config.maxReceiveMessageBytes,
    'grpc.max_send_message_length': config.maxSendMessageBytes,
    'grpc.keepalive_time_ms': config.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': config.keepaliveTimeoutMs,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_concurrent_streams': config.maxActiveSequences + config.maxQueuedSequences + CONTROL_STREAMS,
  };
}

/** The gRPC server: SequenceService, grpc.health.v1 and reflection (v1 and v1alpha), bound and listening. */
export async function startGrpcServer(config: Config, lifecycle: Lifecycle, telemetry: Telemetry, log: Logger): Promise<GrpcServer> {
  const server = new grpc.Server(serverOptions(config));
  const streaming = { lifecycle, telemetry, log, window: config.maxBufferedImages, maxStallS: config.maxStallS };
  server.addService(SequenceServiceService, {
    generateSequence: serverStreaming({ ...streaming, method: 'GenerateSequence' }, generateSequence({ config, lifecycle, telemetry })),
    listModels: listModelsHandler(lifecycle, telemetry, log),
  });
  lifecycle.health.addToServer(server);
  const definitions = protoLoader.loadSync([join(PROTO_ROOT, 'stepframe', 'v1', 'sequence_service.proto'), healthProtoPath], {
    includeDirs: [PROTO_ROOT, dirname(healthProtoPath)],
    longs: String,
    keepCase: true,
  });
  new ReflectionService(definitions).addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${config.host}:${config.port}`, credentials(config), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  clampLongDeadlines(server);
  log.info('gRPC server listening', { address: `${config.host}:${port}`, tls: Boolean(config.tlsCert), mtls: Boolean(config.tlsClientCa) });
  return { server, port };
}
