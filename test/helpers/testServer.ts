import { StepframeClient } from '../../clients/typescript/stepframeClient.js';
import { type Config, parseConfig } from '../../src/server/config.js';
import { createLogger } from '../../src/server/logger.js';
import { type RunningServer, type StartOptions, startServer } from '../../src/server/stepframeServer.js';
import { FIXTURE_BUNDLES } from './paths.js';

export interface TestServer {
  server: RunningServer;
  client: StepframeClient;
  address: string;
  config: Config;
  logs: string[];
}

/** A real server on 127.0.0.1:<free port> over the fixture bundles, with a real client; stopped by `t.after`. */
export async function startTestServer(
  t: { after: (fn: () => Promise<void> | void) => void },
  flags: string[] = [],
  options: StartOptions & { waitReady?: boolean } = {},
): Promise<TestServer> {
  const config = parseConfig(
    ['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--model-dir', FIXTURE_BUNDLES, '--default-model', 'attend_to_image',
      '--execution-providers', 'cpu', '--intra-op-threads', '1', '--executors', '2', '--drain-timeout-s', '10', ...flags],
    {},
  );
  const logs: string[] = [];
  const server = await startServer(config, createLogger('debug', (line) => logs.push(line)), options);
  if (options.waitReady !== false) await server.ready;
  const address = `127.0.0.1:${server.port}`;
  const client = new StepframeClient(address);
  t.after(async () => {
    client.close();
    await server.shutdown();
  });
  return { server, client, address, config, logs };
}
