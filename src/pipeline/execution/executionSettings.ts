/** How model calls are executed: where, on how many executors, with how many threads each. */
export interface ExecutionSettings {
  /** Tried in order, each on its own; the first one that creates a session is used. */
  executionProviders: readonly string[];
  intraOpNumThreads: number;
  interOpNumThreads: number;
  /**
   * `workers`: each executor is a worker thread with its own sessions. `main-thread`: one executor
   * on the main thread, which every model call blocks (the engine before executors; for comparison).
   */
  mode: 'workers' | 'main-thread';
  /** Executors (worker threads); 0 picks one per CUDA device when CUDA loads, else one per core (one in all for large models). */
  executors: number;
  /** Set by layoutFor when a bundle's UNet is real-size: with `executors` 0, CPU gets one executor, not one per core. */
  largeModels?: boolean;
  /**
   * Sessions read weights in place (SessionTuning.weightsInPlace): `auto` for models whose weights
   * are external data (real-size exports), so N executors share one memory-mapped copy; not for
   * weights inside model.onnx (the miniature), which each session copies anyway.
   */
  sharedWeights?: 'auto' | 'on' | 'off';
  /** CUDA devices, one executor each by default; passed to the CUDA provider as `deviceId`. */
  cudaDeviceIds: readonly number[];
  log: (message: string, fields?: Record<string, unknown>) => void;
  /** Conditions an operator should act on (a requested provider that is unavailable); defaults to `log`. */
  warn?: (message: string, fields?: Record<string, unknown>) => void;
}
