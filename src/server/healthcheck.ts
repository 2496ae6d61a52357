/**
 * The container's HEALTHCHECK: exits 0 when grpc.health.v1 reports SERVING on the local port.
 * Reads the same settings as the server (through the one config parser), so a server started with
 * --tls-cert is probed over TLS, and with --tls-client-ca presents the server's own certificate as
 * its client certificate (which the client CA must have signed).
 */
import { parseConfig } from './config.js';
import { checkHealth, probeCredentials } from './healthProbe.js';

const config = parseConfig(process.argv.slice(2), process.env);
try {
  const status = await checkHealth(`127.0.0.1:${config.port}`, 'stepframe.v1.SequenceService', probeCredentials(config), 3000);
  process.stdout.write(`${status}\n`);
  process.exitCode = status === 'SERVING' ? 0 : 1;
} catch (error) {
  process.stdout.write(`health check failed: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
