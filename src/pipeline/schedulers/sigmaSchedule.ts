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

/** Karras et al. 2022, eq. 5 with ρ = 7: n noise levels from σ_max down to σ_min, denser near σ_min. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const rho = 7;
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return Array.from({ length: n }, (_, i) => (maxInv + (n === 1 ? 0 : i / (n - 1)) * (minInv - maxInv)) ** rho);
}

/** The fractional training timestep whose σ is `sigma`, interpolating log σ linearly (diffusers' _sigma_to_t). */
export function sigmaToTimestep(sigma: number, trainingSigmas: Float64Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  let low = 0;
  for (let i = 0; i < trainingSigmas.length; i++) if (Math.log(trainingSigmas[i]) <= logSigma) low = i;
  low = Math.min(low, trainingSigmas.length - 2);
  const lowLog = Math.log(trainingSigmas[low]);
  const highLog = Math.log(trainingSigmas[low + 1]);
  const w = Math.min(1, Math.max(0, (lowLog - logSigma) / (lowLog - highLog)));
  return (1 - w) * low + w * (low + 1);
}

/**
 * The σ-space solvers' run schedule: σ at each timestep plus a final 0. With `use_karras_sigmas`
 * the levels become Karras et al.'s between the run's own σ_min and σ_max, and the timesteps the
 * UNet sees are mapped back from them.
 */
export function sigmaRun(config: SchedulerConfig, tables: NoiseTables, timesteps: readonly number[]): { timesteps: number[]; sigmas: Float64Array } {
  const sigmas = runSigmas(tables, timesteps);
  if (!config.useKarrasSigmas) return { timesteps: [...timesteps], sigmas };
  const karras = karrasSigmas(sigmas[timesteps.length - 1], sigmas[0], timesteps.length);
  return { timesteps: karras.map((s) => sigmaToTimestep(s, tables.sigmas)), sigmas: Float64Array.from([...karras, 0]) };
}
