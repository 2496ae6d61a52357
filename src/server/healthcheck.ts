/**
 * The container's HEALTHCHECK: exits 0 when grpc.health.v1 reports SERVING on the local port.
 * Reads the same STEPFRAME_PORT as the server (through the one config parser).
 */
import { parseConfig } from './config.js';
import { checkHealth } from './healthProbe.js';

const config = parseConfig([], process.env);
try {
  const status = await checkHealth(`127.0.0.1:${config.port}`, 'stepframe.v1.SequenceService', undefined, 3000);
  process.stdout.write(`${status}\n`);
  process.exitCode = status === 'SERVING' ? 0 : 1;
} catch (error) {
  process.stdout.write(`health check failed: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
