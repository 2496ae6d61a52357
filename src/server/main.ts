/**
 * The stepframe server process: parse the config, start telemetry, listen (NOT_SERVING), load the
 * bundles (SERVING), and drain on SIGTERM or SIGINT.
 */
import { ConfigError, helpText, parseConfig } from './config.js';
import { createLogger } from './logger.js';
import { ShutdownDuringLoadError, startServer } from './stepframeServer.js';
import { startTelemetry } from './telemetry.js';

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText());
    return 0;
  }
  let config;
  try {
    config = parseConfig(argv, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`stepframe: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const log = createLogger(config.logLevel);
  const telemetry = await startTelemetry(config, log);
  const server = await startServer(config, log);
  server.ready.catch(async (error) => {
    // After SIGTERM the shutdown below decides the exit code; a load it interrupted is not a failure.
    if (error instanceof ShutdownDuringLoadError) return;
    log.error('loading the model bundles failed; exiting', { error });
    await telemetry.shutdown();
    process.exit(1);
  });

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('shutting down', { signal, drainTimeoutS: config.drainTimeoutS, inFlight: server.lifecycle.inFlightCount });
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  const { drained } = await server.shutdown();
  await telemetry.shutdown();
  log.info('stopped', { drained });
  return 0;
}

process.exitCode = await main();
