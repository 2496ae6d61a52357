import type * as grpc from '@grpc/grpc-js';

import { Engine, type EngineOptions } from '../pipeline/engine.js';
import { resolveMemoryBudget } from '../pipeline/residency/memoryBudget.js';
import type { Config } from './config.js';
import { type GrpcServer, startGrpcServer } from './grpcServer.js';
import { Lifecycle } from './lifecycle.js';
import type { Logger } from './logger.js';
import { Telemetry } from './telemetry.js';

/** A running server: listening at once (health NOT_SERVING), SERVING once the bundles are loaded. */
export interface RunningServer {
  port: number;
  lifecycle: Lifecycle;
  grpc: GrpcServer;
  /**
   * Resolves when the bundles are loaded and health is SERVING; rejects if loading fails, or with
   * ShutdownDuringLoadError when shutdown began first (the loaded engine, if any, is disposed).
   */
  ready: Promise<Engine>;
  /** Drains (health NOT_SERVING, new calls UNAVAILABLE, in-flight calls finish), then stops. */
  shutdown(): Promise<{ drained: boolean }>;
}

/** Shutdown began before the bundles finished loading: the server never served, and that is not a failure. */
export class ShutdownDuringLoadError extends Error {
  constructor(override readonly cause?: unknown) {
    super('shutdown began before the model bundles finished loading');
    this.name = 'ShutdownDuringLoadError';
  }
}

export interface StartOptions {
  /** How bundles are loaded; tests slow it down to observe the NOT_SERVING phase. */
  loadEngine?: (options: EngineOptions) => Promise<Engine>;
}

export async function startServer(config: Config, log: Logger, options: StartOptions = {}): Promise<RunningServer> {
  const lifecycle = new Lifecycle();
  let engine: Engine | null = null;
  const telemetry = new Telemetry(() => engine?.stats() ?? { activeSequences: 0, pausedSequences: 0, queuedSequences: 0, queuedUnetRows: 0, executors: { executors: 0, busy: 0, restarts: 0 }, modelsByProvider: {}, loadedBundles: 0, loadedWeightBytes: 0 }, () => lifecycle.serving);
  const grpcServer = await startGrpcServer(config, lifecycle, telemetry, log);

  const loadEngine = options.loadEngine ?? ((o: EngineOptions) => Engine.create(o));
  const ready = loadEngine({
    modelsDir: config.modelDir,
    defaultModel: config.defaultModel,
    session: {
      executionProviders: config.executionProviders,
      intraOpNumThreads: config.intraOpThreads,
      interOpNumThreads: config.interOpThreads,
      mode: config.executionMode,
      executors: config.executors,
      cudaDeviceIds: config.cudaDeviceIds,
      sharedWeights: config.sharedWeights,
      log: (message, fields) => log.info(message, fields),
      warn: (message, fields) => log.warn(message, fields),
    },
    batch: { maxBatch: config.maxBatch, maxQueueDelayMs: config.maxQueueDelayMs },
    admission: { maxActiveSequences: config.maxActiveSequences, maxQueuedSequences: config.maxQueuedSequences },
    observer: telemetry.observeBatch,
    verifyWeights: config.verifyWeights,
    residency: { budgetBytes: resolveMemoryBudget(config.memoryBudget), maxLoaded: config.maxLoadedBundles > 0 ? config.maxLoadedBundles : null },
    onBundleEvent: telemetry.observeBundle,
  }).then(
    async (loaded) => {
      if (lifecycle.draining) {
        // SIGTERM came while loading: health must not turn SERVING now, and the executors just loaded must go.
        log.info('bundles loaded after shutdown began; not serving');
        await loaded.dispose();
        throw new ShutdownDuringLoadError();
      }
      engine = loaded;
      lifecycle.serve(loaded);
      log.info('serving', { models: loaded.models().map((m) => m.name), defaultModel: loaded.defaultModel, executors: loaded.stats().executors.executors });
      return loaded;
    },
    (error: unknown) => {
      throw lifecycle.draining ? new ShutdownDuringLoadError(error) : error;
    },
  );
  // Observed here so a rejection during shutdown is never unhandled; callers still see it through `ready`.
  const loading = ready.then(() => undefined, () => undefined);

  return {
    port: grpcServer.port,
    lifecycle,
    grpc: grpcServer,
    ready,
    async shutdown() {
      const started = Date.now();
      const drained = await lifecycle.drain(config.drainTimeoutS * 1000);
      if (!drained) log.warn('drain timeout passed; stopping with calls in flight', { inFlight: lifecycle.inFlightCount });
      // A load still running is waited for within what is left of the drain timeout, so its executors are disposed.
      const left = Math.max(0, config.drainTimeoutS * 1000 - (Date.now() - started));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([loading, new Promise<void>((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
      await stopGrpc(grpcServer.server, drained);
      await engine?.dispose();
      return { drained };
    },
  };
}

function stopGrpc(server: grpc.Server, graceful: boolean): Promise<void> {
  if (!graceful) {
    server.forceShutdown();
    return Promise.resolve();
  }
  return new Promise((resolve) => server.tryShutdown(() => resolve()));
}
