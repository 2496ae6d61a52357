import { realpath } from 'node:fs/promises';

import type { ComponentName } from './manifest.js';
import { CONTRACTS } from './contracts.js';
import { OnnxModel, type SessionSettings } from './onnxModel.js';

/**
 * Creates each ONNX session once per process. Bundles that reference the same shared file
 * (the encoders and VAE of all fuser bundles) get the same session.
 */
export class SessionPool {
  private readonly models = new Map<string, Promise<OnnxModel>>();
  private readonly unavailableProviders = new Set<string>();

  constructor(private readonly settings: SessionSettings) {}

  async load(file: string, component: ComponentName): Promise<OnnxModel> {
    const key = `${component}:${await realpath(file)}`;
    let model = this.models.get(key);
    if (!model) {
      model = OnnxModel.create(file, CONTRACTS[component], this.settings, this.unavailableProviders);
      this.models.set(key, model);
      model.catch(() => this.models.delete(key));
    }
    return model;
  }

  /** Distinct sessions created so far. */
  get size(): number {
    return this.models.size;
  }

  async dispose(): Promise<void> {
    const all = [...this.models.values()];
    this.models.clear();
    await Promise.allSettled(all.map(async (model) => (await model).dispose()));
  }
}
