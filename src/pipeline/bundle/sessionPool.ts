import { realpath } from 'node:fs/promises';

import type { ExecutionSettings } from '../execution/executionSettings.js';
import { ExecutorPool } from '../execution/executorPool.js';
import type { ComponentName } from './manifest.js';
import { CONTRACTS } from './contracts.js';
import { OnnxModel } from './onnxModel.js';

/**
 * Loads each ONNX model once per process, into every executor. Bundles that reference the same
 * shared file (the encoders and VAE of all fuser bundles) get the same model.
 */
export class SessionPool {
  readonly executors: ExecutorPool;
  private readonly models = new Map<string, Promise<OnnxModel>>();

  constructor(private readonly settings: ExecutionSettings) {
    this.executors = new ExecutorPool(settings);
  }

  async load(file: string, component: ComponentName): Promise<OnnxModel> {
    const key = `${component}:${await realpath(file)}`;
    let model = this.models.get(key);
    if (!model) {
      model = OnnxModel.create(file, CONTRACTS[component], this.executors, this.settings.log);
      this.models.set(key, model);
      model.catch(() => this.models.delete(key));
    }
    return model;
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
