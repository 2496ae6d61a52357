import * as ort from 'onnxruntime-node';

import { fromFloat16Array, toFloat16Array } from './float16.js';
import { ModelLoadError } from './modelLoadError.js';
import type { LoadedModelInfo, ProviderChoice, SessionTuning, TensorMetadata, WireFeed, WireOutputs } from './protocol.js';

// ONNX Runtime's default logger prints its own coloured error text to stderr, for example when the
// CUDA provider's libraries are absent and a session falls back to CPU as configured. Every failure
// that matters reaches the engine as an exception and is reported once, in the server's own log.
ort.env.logLevel = 'fatal';

interface HostedModel {
  file: string;
  session: ort.InferenceSession;
  inputTypes: ReadonlyMap<string, string>;
}

/**
 * The ONNX Runtime sessions of one executor, by model id, and the casts at their boundary. It runs
 * inside a worker thread (or on the main thread in `main-thread` mode); nothing here knows which.
 */
export class SessionHost {
  private readonly models = new Map<number, HostedModel>();

  async load(modelId: number, file: string, providers: readonly ProviderChoice[], tuning: SessionTuning): Promise<LoadedModelInfo> {
    const unavailable: LoadedModelInfo['unavailable'] = [];
    for (let i = 0; i < providers.length; i++) {
      const choice = providers[i];
      try {
        const session = await ort.InferenceSession.create(file, sessionOptions(choice, tuning));
        const inputs = metadata(session.inputMetadata);
        this.models.set(modelId, { file, session, inputTypes: new Map(inputs.map((m) => [m.name, m.type])) });
        return { provider: choice.name, inputs, outputs: metadata(session.outputMetadata), unavailable };
      } catch (error) {
        // ONNX Runtime names the file in its own message; ours names it once, first.
        const message = firstLine(error).split(file).join('the file');
        // The last provider failing means the file itself cannot be loaded; earlier ones only count
        // as unavailable once a later provider shows the file is fine.
        if (i === providers.length - 1) throw new ModelLoadError(`${file}: ONNX Runtime cannot load this model (${choice.name}: ${message})`);
        unavailable.push({ provider: choice.name, error: message });
      }
    }
    throw new ModelLoadError(`${file}: no execution provider was configured`);
  }

  async run(modelId: number, feeds: Readonly<Record<string, WireFeed>>, outputNames: readonly string[]): Promise<WireOutputs> {
    const model = this.model(modelId);
    const tensors: Record<string, ort.Tensor> = {};
    for (const [name, feed] of Object.entries(feeds)) tensors[name] = castFeed(feed, model.inputTypes.get(name) ?? feed.type);
    const results = await model.session.run(tensors);
    const outputs: WireOutputs = {};
    for (const name of outputNames) {
      const out = results[name];
      if (out) outputs[name] = { data: widen(out), dims: out.dims };
    }
    return outputs;
  }

  async release(modelId: number): Promise<void> {
    const model = this.models.get(modelId);
    this.models.delete(modelId);
    await model?.session.release();
  }

  async releaseAll(): Promise<void> {
    await Promise.allSettled([...this.models.keys()].map((id) => this.release(id)));
  }

  private model(modelId: number): HostedModel {
    const model = this.models.get(modelId);
    if (!model) throw new Error(`model ${modelId} is not loaded in this executor`);
    return model;
  }
}

function sessionOptions(choice: ProviderChoice, tuning: SessionTuning): ort.InferenceSession.SessionOptions {
  const provider = choice.deviceId === undefined ? choice.name : ({ name: choice.name, deviceId: choice.deviceId } as ort.InferenceSession.ExecutionProviderConfig);
  return {
    executionProviders: [provider],
    graphOptimizationLevel: tuning.weightsInPlace ? 'extended' : 'all',
    intraOpNumThreads: tuning.intraOpNumThreads,
    interOpNumThreads: tuning.interOpNumThreads,
    ...(tuning.weightsInPlace ? { extra: { session: { disable_prepacking: '1' } } } : {}),
  };
}

/** The engine's float32/int64 feed as the dtype the graph declares: float16 activations, int32 ids. */
function castFeed(feed: WireFeed, declared: string): ort.Tensor {
  const dims = feed.dims as number[];
  if (feed.type === 'float32' && declared === 'float16') return new ort.Tensor('float16', toFloat16Array(feed.data), dims);
  if (feed.type === 'int64' && declared === 'int32') return new ort.Tensor('int32', Int32Array.from(feed.data, Number), dims);
  return new ort.Tensor(feed.type, feed.data, dims);
}

function widen(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') return fromFloat16Array(tensor.data as Uint16Array);
  throw new Error(`output of dtype ${tensor.type} is not supported (float32 or float16)`);
}

function metadata(list: readonly ort.InferenceSession.ValueMetadata[]): TensorMetadata[] {
  return list.filter((m) => m.isTensor).map((m) => ({ name: m.name, type: (m as { type: string }).type, shape: [...(m as { shape: readonly (number | string)[] }).shape] }));
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0];
}
