import { BundleError } from '../errors.js';
import type { ExecutorPool, ModelLoadOptions } from '../execution/executorPool.js';
import type { Feeds, Outputs } from '../batching/feeds.js';
import { concatFeeds } from '../batching/feeds.js';
import type { TensorMetadata } from '../execution/protocol.js';
import { ModelLoadError } from '../execution/modelLoadError.js';
import type { TensorDtype } from './manifest.js';

/** What the engine needs from one input or output of a model. */
export interface TensorExpectation {
  name: string;
  dtypes: readonly TensorDtype[];
  /** Allowed ranks; the UNet's timestep may be [B] or, in older exports, a scalar. */
  ranks: readonly number[];
  /** Optional inputs may be missing from the graph (exporters drop inputs a model ignores). */
  optional?: boolean;
}

export interface ModelContract {
  inputs: readonly TensorExpectation[];
  outputs: readonly TensorExpectation[];
}

/**
 * One ONNX model, loaded into every executor and checked once against the contract the engine
 * relies on. It holds the graph's metadata on the main thread; its calls run on the executors.
 */
export class OnnxModel {
  private constructor(
    readonly id: number,
    readonly file: string,
    readonly provider: string,
    readonly executors: ExecutorPool,
    private readonly inputs: ReadonlyMap<string, TensorMetadata>,
    private readonly outputs: ReadonlyMap<string, TensorMetadata>,
  ) {}

  static async create(
    file: string,
    contract: ModelContract,
    executors: ExecutorPool,
    log: (message: string, fields?: Record<string, unknown>) => void,
    options?: ModelLoadOptions,
  ): Promise<OnnxModel> {
    let loaded;
    try {
      loaded = await executors.load(file, options);
    } catch (error) {
      if (error instanceof ModelLoadError) throw new BundleError(error.message, { cause: error });
      throw new BundleError(`${file}: loading failed (${(error as Error).message})`, { cause: error });
    }
    const inputs = byName(loaded.info.inputs);
    const outputs = byName(loaded.info.outputs);
    checkSide(file, 'input', inputs, contract.inputs, true);
    checkSide(file, 'output', outputs, contract.outputs, false);
    log('model loaded', { file, provider: loaded.info.provider, executors: executors.size, weightsInPlace: options?.weightsInPlace ?? false, inputs: [...inputs.keys()] });
    return new OnnxModel(loaded.id, file, loaded.info.provider, executors, inputs, outputs);
  }

  hasInput(name: string): boolean {
    return this.inputs.has(name);
  }

  hasOutput(name: string): boolean {
    return this.outputs.has(name);
  }

  inputDtype(name: string): string | undefined {
    return this.inputs.get(name)?.type;
  }

  outputDtype(name: string): string | undefined {
    return this.outputs.get(name)?.type;
  }

  inputRank(name: string): number | undefined {
    return this.inputs.get(name)?.shape.length;
  }

  /** The declared size of an input's axis, or undefined when it is symbolic. */
  inputDim(name: string, axis: number): number | undefined {
    const dim = this.inputs.get(name)?.shape[axis];
    return typeof dim === 'number' && dim > 0 ? dim : undefined;
  }

  /** One unbatched call on the next free executor (probes and parity checks; the engine batches). */
  async run(feeds: Feeds): Promise<Outputs> {
    return this.executors.run(this.id, concatFeeds([feeds], new Set()), [...this.outputs.keys()]);
  }
}

function byName(list: readonly TensorMetadata[]): Map<string, TensorMetadata> {
  return new Map(list.map((m) => [m.name, m]));
}

function checkSide(
  file: string,
  side: 'input' | 'output',
  actual: ReadonlyMap<string, TensorMetadata>,
  expected: readonly TensorExpectation[],
  exhaustive: boolean,
): void {
  for (const want of expected) {
    const got = actual.get(want.name);
    if (!got) {
      if (want.optional) continue;
      throw new BundleError(`${file}: missing ${side} '${want.name}' (the model has ${[...actual.keys()].join(', ') || 'none'})`);
    }
    if (!want.dtypes.includes(got.type as TensorDtype)) {
      throw new BundleError(`${file}: ${side} '${want.name}' has dtype ${got.type}, expected ${want.dtypes.join(' or ')}`);
    }
    if (!want.ranks.includes(got.shape.length)) {
      throw new BundleError(
        `${file}: ${side} '${want.name}' has rank ${got.shape.length} [${got.shape.join(', ')}], expected rank ${want.ranks.join(' or ')}`,
      );
    }
  }
  if (exhaustive) {
    const known = new Set(expected.map((e) => e.name));
    for (const name of actual.keys()) {
      if (!known.has(name)) {
        throw new BundleError(`${file}: unexpected ${side} '${name}' (the engine feeds ${[...known].join(', ')})`);
      }
    }
  }
}
