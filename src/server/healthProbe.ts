import { readFileSync } from 'node:fs';

import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';

import type { Config } from './config.js';

export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

interface HealthClient extends grpc.Client {
  check(request: { service: string }, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response?: { status: HealthStatus }) => void): grpc.ClientUnaryCall;
}

// The client of grpc-health-check's own service definition (the package the server's health service comes from).
const HealthClient = grpc.makeClientConstructor(healthService, 'grpc.health.v1.Health') as unknown as new (address: string, credentials: grpc.ChannelCredentials) => HealthClient;

/** grpc.health.v1.Health/Check against `address`; rejects on transport errors. */
export function checkHealth(address: string, service = '', credentials = grpc.credentials.createInsecure(), timeoutMs = 5000): Promise<HealthStatus> {
  const client = new HealthClient(address, credentials);
  return new Promise((resolve, reject) => {
    client.check({ service }, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response!.status);
    });
  });
}

/** The probe's credentials for the server `config` describes. */
export function probeCredentials(config: Config): grpc.ChannelCredentials {
  if (!config.tlsCert || !config.tlsKey) return grpc.credentials.createInsecure();
  const cert = readFileSync(config.tlsCert);
  const key = readFileSync(config.tlsKey);
  // The probe dials 127.0.0.1, which the certificate need not name, and asks whether the process serves, not who it is.
  return grpc.credentials.createSsl(null, config.tlsClientCa ? key : null, config.tlsClientCa ? cert : null, { rejectUnauthorized: false });
}
