import * as ort from 'onnxruntime-node';

import { BundleError, ModelFailureError } from '../errors.js';
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

export interface SessionSettings {
  /** Tried in order, each on its own; the first one that creates a session is used. */
  executionProviders: readonly string[];
  intraOpNumThreads: number;
  interOpNumThreads: number;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

interface Metadata {
  name: string;
  type: string;
  shape: readonly (number | string)[];
}

/** One ONNX Runtime session, checked once against the contract the engine relies on. */
export class OnnxModel {
  private constructor(
    readonly file: string,
    readonly provider: string,
    private readonly session: ort.InferenceSession,
    private readonly inputs: ReadonlyMap<string, Metadata>,
  ) {}

  /** `unavailable` collects providers that failed once, so later models skip them quietly. */
  static async create(file: string, contract: ModelContract, settings: SessionSettings, unavailable = new Set<string>()): Promise<OnnxModel> {
    const { session, provider } = await createSession(file, settings, unavailable);
    const inputs = metadataByName(session.inputMetadata);
    const outputs = metadataByName(session.outputMetadata);
    try {
      checkSide(file, 'input', inputs, contract.inputs, true);
      checkSide(file, 'output', outputs, contract.outputs, false);
    } catch (error) {
      await session.release();
      throw error;
    }
    settings.log('model loaded', { file, provider, inputs: [...inputs.keys()] });
    return new OnnxModel(file, provider, session, inputs);
  }

  hasInput(name: string): boolean {
    return this.inputs.has(name);
  }

  inputDtype(name: string): string | undefined {
    return this.inputs.get(name)?.type;
  }

  inputRank(name: string): number | undefined {
    return this.inputs.get(name)?.shape.length;
  }

  /** The declared size of an input's axis, or undefined when it is symbolic. */
  inputDim(name: string, axis: number): number | undefined {
    const dim = this.inputs.get(name)?.shape[axis];
    return typeof dim === 'number' && dim > 0 ? dim : undefined;
  }

  async run(feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> {
    try {
      return await this.session.run(feeds);
    } catch (error) {
      throw new ModelFailureError(`inference failed in ${this.file}`, { cause: error });
    }
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

async function createSession(file: string, settings: SessionSettings, unavailable: Set<string>): Promise<{ session: ort.InferenceSession; provider: string }> {
  const failures: string[] = [];
  for (const provider of settings.executionProviders) {
    if (unavailable.has(provider)) continue;
    try {
      const session = await ort.InferenceSession.create(file, {
        executionProviders: [provider],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: settings.intraOpNumThreads,
        interOpNumThreads: settings.interOpNumThreads,
      });
      return { session, provider };
    } catch (error) {
      failures.push(`${provider}: ${(error as Error).message.split('\n')[0]}`);
      unavailable.add(provider);
      settings.log('execution provider unavailable; not trying it again in this process', { file, provider, error: (error as Error).message.split('\n')[0] });
    }
  }
  throw new BundleError(`${file}: no execution provider could load the model (${failures.join('; ')})`);
}

function metadataByName(list: readonly ort.InferenceSession.ValueMetadata[]): Map<string, Metadata> {
  const map = new Map<string, Metadata>();
  for (const m of list) {
    if (m.isTensor) map.set(m.name, { name: m.name, type: m.type, shape: m.shape });
  }
  return map;
}

function checkSide(
  file: string,
  side: 'input' | 'output',
  actual: ReadonlyMap<string, Metadata>,
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
