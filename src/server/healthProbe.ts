import * as grpc from '@grpc/grpc-js';

export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

// grpc.health.v1 messages are tiny, so they are encoded by hand: HealthCheckRequest{1: service},
// HealthCheckResponse{1: status}. This keeps the probe free of proto loading at container start.
function encodeRequest(service: string): Buffer {
  const bytes = Buffer.from(service, 'utf8');
  if (!bytes.length) return Buffer.alloc(0);
  // The length is a protobuf varint: one byte below 128, more for longer service names.
  const length: number[] = [];
  for (let n = bytes.length; ; n >>>= 7) {
    if (n < 0x80) {
      length.push(n);
      break;
    }
    length.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x0a, ...length]), bytes]);
}

function decodeResponse(buf: Buffer): HealthStatus {
  const status = buf.length >= 2 && buf[0] === 0x08 ? buf[1] : 0;
  return (['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const)[status] ?? 'UNKNOWN';
}

/** grpc.health.v1.Health/Check against `address`; rejects on transport errors. */
export function checkHealth(address: string, service = '', credentials = grpc.credentials.createInsecure(), timeoutMs = 5000): Promise<HealthStatus> {
  const Client = grpc.makeGenericClientConstructor({}, 'Health');
  const client = new Client(address, credentials);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      encodeRequest,
      decodeResponse,
      service,
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (error: grpc.ServiceError | null, value?: HealthStatus) => {
        client.close();
        if (error) reject(error);
        else resolve(value!);
      },
    );
  });
}
