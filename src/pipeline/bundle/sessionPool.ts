import { realpath } from 'node:fs/promises';

import type { ExecutionSettings } from '../execution/executionSettings.js';
import { ExecutorPool } from '../execution/executorPool.js';
import type { ComponentName } from './manifest.js';
import { CONTRACTS } from './contracts.js';
import { OnnxModel } from './onnxModel.js';

/** Where a model's weights live, which decides whether executors can share them. */
export interface ModelWeights {
  /** The weights are in external data files beside model.onnx (memory-mapped by ONNX Runtime). */
  externalData: boolean;
}

interface PooledModel {
  model: Promise<OnnxModel>;
  /** Bundles holding it: the shared encoders and VAE stay while any fuser bundle is loaded. */
  holders: number;
}

/**
 * Loads each ONNX model once per process, into every executor. Bundles that reference the same
 * shared file (the encoders and VAE of all fuser bundles) get the same model, counted once per
 * holder, and it is unloaded when its last holder releases it.
 */
export class SessionPool {
  readonly executors: ExecutorPool;
  private readonly models = new Map<string, PooledModel>();

  constructor(private readonly settings: ExecutionSettings) {
    this.executors = new ExecutorPool(settings);
  }

  /** The key a file is pooled under: the same file read as two components is two models. */
  static async key(file: string, component: ComponentName): Promise<string> {
    return `${component}:${await realpath(file)}`;
  }

  async load(file: string, component: ComponentName, weights: ModelWeights = { externalData: false }): Promise<OnnxModel> {
    const key = await SessionPool.key(file, component);
    let pooled = this.models.get(key);
    if (!pooled) {
      const model = OnnxModel.create(file, CONTRACTS[component], this.executors, this.settings.log, { weightsInPlace: this.weightsInPlace(weights) });
      pooled = { model, holders: 0 };
      this.models.set(key, pooled);
      const entry = pooled;
      model.catch(() => this.models.get(key) === entry && this.models.delete(key));
    }
    pooled.holders++;
    return pooled.model;
  }

  /** One holder lets go of `model`; the last one unloads it from every executor. Returns whether it was unloaded. */
  async release(model: OnnxModel, component: ComponentName): Promise<boolean> {
    const key = await SessionPool.key(model.file, component);
    const pooled = this.models.get(key);
    if (!pooled || --pooled.holders > 0) return false;
    this.models.delete(key);
    await this.executors.unload(model.id);
    return true;
  }

  /** Weights ONNX Runtime reads in place are held once per process; any other model once per executor. */
  sharedAcrossExecutors(weights: ModelWeights): boolean {
    return weights.externalData && this.weightsInPlace(weights) && (this.executors.providerInUse ?? this.settings.executionProviders[0]) === 'cpu';
  }

  private weightsInPlace(weights: ModelWeights): boolean {
    const setting = this.settings.sharedWeights ?? 'auto';
    return setting === 'on' || (setting === 'auto' && weights.externalData);
  }

  /** Distinct models loaded so far. */
  get size(): number {
    return this.models.size;
  }

  async dispose(): Promise<void> {
    this.models.clear();
    await this.executors.dispose();
  }
}
