import type { SchedulerConfig } from './schedulerConfig.js';

/** The training noise schedule, built once per bundle and shared by every run. */
export interface NoiseTables {
  readonly betas: Float64Array;
  /** ᾱ_t = Π_{s≤t} (1 − β_s). */
  readonly alphasCumprod: Float64Array;
  /** σ_t = √((1 − ᾱ_t) / ᾱ_t), the variance-exploding view the Euler and DPM solvers step in. */
  readonly sigmas: Float64Array;
}

export function buildNoiseTables(config: SchedulerConfig): NoiseTables {
  const n = config.numTrainTimesteps;
  const betas = new Float64Array(n);
  if (config.trainedBetas) {
    betas.set(config.trainedBetas);
  } else if (config.betaSchedule === 'linear') {
    for (let i = 0; i < n; i++) betas[i] = f32(config.betaStart + ((config.betaEnd - config.betaStart) * i) / (n - 1));
  } else if (config.betaSchedule === 'scaled_linear') {
    // SD's schedule: linear in √β, as diffusers computes it (in float32).
    const a = Math.sqrt(config.betaStart);
    const b = Math.sqrt(config.betaEnd);
    for (let i = 0; i < n; i++) betas[i] = f32(f32(a + ((b - a) * i) / (n - 1)) ** 2);
  } else {
    // Glide's cosine schedule, β capped at 0.999.
    const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    for (let i = 0; i < n; i++) betas[i] = f32(Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999));
  }
  const alphasCumprod = new Float64Array(n);
  let product = 1;
  for (let i = 0; i < n; i++) {
    product = f32(product * f32(1 - betas[i]));
    alphasCumprod[i] = product;
  }
  const sigmas = alphasCumprod.map((a) => Math.sqrt((1 - a) / a));
  return { betas, alphasCumprod, sigmas };
}

/** Rounds to float32, so tables agree with diffusers' float32 tensors. */
export function f32(x: number): number {
  return Math.fround(x);
}

/** Linear interpolation of `table` at fractional index `x` (numpy.interp over 0..n-1). */
export function interpolate(table: Float64Array, x: number): number {
  if (x <= 0) return table[0];
  if (x >= table.length - 1) return table[table.length - 1];
  const i = Math.floor(x);
  const w = x - i;
  return table[i] * (1 - w) + table[i + 1] * w;
}
