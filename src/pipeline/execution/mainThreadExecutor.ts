import type { Executor } from './executor.js';
import type { LoadedModelInfo, ProviderChoice, SessionTuning, WireFeed, WireOutputs } from './protocol.js';
import { SessionHost } from './sessionHost.js';

/**
 * The executor of `--execution-mode main-thread`: sessions on the main thread, as the engine ran
 * before executors existed. Every model call blocks the event loop for its whole duration; it
 * stays for comparison in the benchmark and for debugging with one thread.
 */
export class MainThreadExecutor implements Executor {
  readonly lost = new Promise<string>(() => undefined);
  private readonly host = new SessionHost();

  constructor(
    readonly index: number,
    readonly deviceId: number | undefined,
  ) {}

  load(modelId: number, file: string, providers: readonly ProviderChoice[], tuning: SessionTuning): Promise<LoadedModelInfo> {
    return this.host.load(modelId, file, providers, tuning);
  }

  release(modelId: number): Promise<void> {
    return this.host.release(modelId);
  }

  run(modelId: number, feeds: Record<string, WireFeed>, outputNames: readonly string[]): Promise<WireOutputs> {
    return this.host.run(modelId, feeds, outputNames);
  }

  exitOnNextRun(): Promise<void> {
    return Promise.reject(new Error('the main-thread executor has no fault hook: it would end the server'));
  }

  dispose(): Promise<void> {
    return this.host.releaseAll();
  }
}
