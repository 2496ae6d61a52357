import { type NoiseTables, interpolate } from './noiseTables.js';
import type { PredictionType, SchedulerConfig } from './schedulerConfig.js';

/** σ at each run timestep (interpolated in the training table), followed by a final σ = 0. */
export function runSigmas(tables: NoiseTables, timesteps: readonly number[]): Float64Array {
  const sigmas = new Float64Array(timesteps.length + 1);
  timesteps.forEach((t, i) => (sigmas[i] = interpolate(tables.sigmas, t)));
  return sigmas;
}

/** diffusers' Euler schedulers start from σ_max, or √(σ_max² + 1) with leading spacing. */
export function eulerInitNoiseSigma(config: SchedulerConfig, sigmaMax: number): number {
  return config.timestepSpacing === 'leading' ? Math.sqrt(sigmaMax * sigmaMax + 1) : sigmaMax;
}

/** x / √(σ² + 1): the UNet was trained on variance-preserving inputs. */
export function scaleBySigma(sample: Float32Array, sigma: number): Float32Array {
  const scale = 1 / Math.sqrt(sigma * sigma + 1);
  return sample.map((v) => v * scale);
}

/** x̂₀ in σ-space: ε: x − σ ε̂;  v: x / (σ² + 1) − σ v̂ / √(σ² + 1). */
export function sigmaPredictOriginal(prediction: PredictionType, modelOutput: Float32Array, sample: Float32Array, sigma: number): Float64Array {
  const x0 = new Float64Array(sample.length);
  const s2 = sigma * sigma + 1;
  for (let i = 0; i < sample.length; i++) {
    x0[i] = prediction === 'epsilon' ? sample[i] - sigma * modelOutput[i] : sample[i] / s2 - (sigma * modelOutput[i]) / Math.sqrt(s2);
  }
  return x0;
}
