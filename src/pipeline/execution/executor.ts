import type { LoadedModelInfo, ProviderChoice, SessionTuning, WireFeed, WireOutputs } from './protocol.js';

/**
 * One place where model calls run, one call at a time: a worker thread with its own sessions (or,
 * in `main-thread` mode, the main thread itself). Every executor holds every loaded model.
 */
export interface Executor {
  readonly index: number;
  /** The CUDA device this executor's sessions use, when CUDA is among the providers. */
  readonly deviceId: number | undefined;
  load(modelId: number, file: string, providers: readonly ProviderChoice[], tuning: SessionTuning): Promise<LoadedModelInfo>;
  /** Drops the model's sessions (its bundle was unloaded to make room). */
  release(modelId: number): Promise<void>;
  /** Feeds' buffers are transferred to the executor: the caller must not touch them afterwards. */
  run(modelId: number, feeds: Record<string, WireFeed>, outputNames: readonly string[]): Promise<WireOutputs>;
  /** Resolves with a reason when the executor is gone for good (crash or exit); never resolves for a healthy one. */
  readonly lost: Promise<string>;
  /** Test-only fault hook: the next model call ends the executor mid-call. */
  exitOnNextRun(): Promise<void>;
  dispose(): Promise<void>;
}
