/**
 * What crosses between the main thread and an executor. Tensors travel as typed arrays whose
 * buffers are transferred, never copied; the engine's side speaks float32 and int64 only, and the
 * executor casts to whatever dtype the graph declares.
 */

/** One input as the engine builds it: float32 activations or int64 ids and timesteps. */
export type WireFeed = { type: 'float32'; data: Float32Array; dims: readonly number[] } | { type: 'int64'; data: BigInt64Array; dims: readonly number[] };

/** Outputs always come back as float32, whatever the graph computes in. */
export type WireOutputs = Record<string, { data: Float32Array; dims: readonly number[] }>;

/** An input or output as the graph declares it. */
export interface TensorMetadata {
  name: string;
  type: string;
  shape: readonly (number | string)[];
}

/** A provider to try, with the CUDA device it should use. */
export interface ProviderChoice {
  name: string;
  deviceId?: number;
}

/** Per-session options an executor applies when it creates a session. */
export interface SessionTuning {
  intraOpNumThreads: number;
  interOpNumThreads: number;
  /**
   * Read the weights where they were loaded instead of copying them: ONNX Runtime's prepacking
   * (MatMul and Conv weights repacked into private per-session buffers) off, and graph
   * optimisations up to `extended` (the `all` level's layout transforms rewrite Conv weights into
   * new buffers). For external data the weights then stay in the memory-mapped file, which every
   * executor's session (and the page cache) shares (docs/performance.md, "Weights held once").
   */
  weightsInPlace: boolean;
}

export interface LoadedModelInfo {
  provider: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
  /** Providers that failed before one that worked: really unavailable, not a broken model. */
  unavailable: { provider: string; error: string }[];
}

export type ExecutorCommand =
  | { op: 'load'; callId: number; modelId: number; file: string; providers: ProviderChoice[]; tuning: SessionTuning }
  | { op: 'run'; callId: number; modelId: number; feeds: Record<string, WireFeed>; outputNames: readonly string[] }
  | { op: 'release'; callId: number; modelId: number }
  /** Test-only fault hook: the worker exits in the middle of its next run, as an ONNX Runtime abort would. */
  | { op: 'exit-on-next-run'; callId: number };

export type ExecutorReply =
  | { callId: number; ok: true; info?: LoadedModelInfo; outputs?: WireOutputs }
  /** `errorName` carries the error's class across the thread boundary (structured clone keeps only plain data). */
  | { callId: number; ok: false; message: string; errorName?: string };

/** The buffers to transfer with a message; each at most once, as postMessage requires. */
export function transferList(tensors: Iterable<{ data: ArrayBufferView }>): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const t of tensors) buffers.add(t.data.buffer as ArrayBuffer);
  return [...buffers];
}
