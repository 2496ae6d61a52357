import { InternalInvariantError } from '../errors.js';
import type { SeededRandom } from '../random.js';
import type { PredictionType } from './schedulerConfig.js';

export type SchedulerName = 'ddpm' | 'ddim' | 'pndm' | 'lms' | 'euler' | 'euler_ancestral' | 'dpmpp_2m' | 'lcm';

export interface SchedulerStepResult {
  prevSample: Float32Array;
  predOriginalSample?: Float32Array;
}

/**
 * How noisy the latents are just before a step: variance-preserving, x = √ᾱ x₀ + √(1−ᾱ) ε
 * (DDPM, DDIM, LCM, DPM++ 2M), or σ-space, x = x₀ + σ ε (Euler, Euler ancestral, LMS).
 */
export type NoiseLevel = { alphaProd: number } | { sigma: number };

/** Per-sequence state of one sampling loop; tables stay in the shared scheduler. */
export interface SchedulerRun {
  readonly timesteps: readonly number[];
  readonly initNoiseSigma: number;
  /**
   * For a warm start (img2img): the noise level latents need before step `index`, or null where
   * the scheduler cannot start partway (PNDM's warm-up steps need the schedule from its start).
   */
  noiseLevel(index: number): NoiseLevel | null;
  /** Begins at step `index` instead of the first; only before any step. */
  startAt(index: number): void;
  scaleModelInput(sample: Float32Array, t: number): Float32Array;
  /** `noise` is the standard normal draw a stochastic step would otherwise take from the run's generator. */
  step(modelOutput: Float32Array, t: number, sample: Float32Array, noise?: Float32Array): SchedulerStepResult;
}

/** Per-request settings of one run: they belong to the run, never to the shared scheduler. */
export interface RunOptions {
  /** DDIM's η (0: deterministic); the other schedulers ignore it. */
  eta?: number;
}

export interface Scheduler {
  readonly name: SchedulerName;
  setTimesteps(numInferenceSteps: number, random?: SeededRandom, options?: RunOptions): SchedulerRun;
}

/** Tracks which step of `timesteps` comes next, and insists the caller follows the order. */
export class StepCursor {
  private index = 0;

  constructor(private readonly timesteps: readonly number[]) {}

  startAt(index: number): void {
    if (this.index !== 0 || !Number.isInteger(index) || index < 0 || index >= this.timesteps.length) {
      throw new InternalInvariantError(`a run can start at step 0 to ${this.timesteps.length - 1} before stepping; asked for ${index} at step ${this.index}`);
    }
    this.index = index;
  }

  advance(t: number): number {
    const i = this.index;
    if (i >= this.timesteps.length || this.timesteps[i] !== t) {
      throw new InternalInvariantError(`scheduler stepped out of order: expected timestep ${this.timesteps[i] ?? 'none (the run is finished)'}, got ${t}`);
    }
    this.index++;
    return i;
  }
}

export function drawNoise(size: number, noise: Float32Array | undefined, random: SeededRandom | undefined): Float32Array {
  if (noise) {
    if (noise.length !== size) throw new InternalInvariantError(`noise has ${noise.length} values, the sample has ${size}`);
    return noise;
  }
  if (!random) throw new InternalInvariantError('a stochastic scheduler step needs noise or a seeded generator');
  return random.normals(size);
}

/**
 * x̂₀ and ε̂ from the model output at ᾱ_t, for ε-prediction (SD 1.x) and v-prediction (SD 2.x):
 * ε: x̂₀ = (x_t − √(1−ᾱ) ε̂) / √ᾱ;   v: x̂₀ = √ᾱ x_t − √(1−ᾱ) v̂, ε̂ = √ᾱ v̂ + √(1−ᾱ) x_t.
 */
export function predictOriginalAndNoise(
  prediction: PredictionType,
  modelOutput: Float32Array,
  sample: Float32Array,
  alphaProd: number,
): { x0: Float64Array; eps: Float64Array } {
  const a = Math.sqrt(alphaProd);
  const b = Math.sqrt(1 - alphaProd);
  const x0 = new Float64Array(sample.length);
  const eps = new Float64Array(sample.length);
  for (let i = 0; i < sample.length; i++) {
    if (prediction === 'epsilon') {
      eps[i] = modelOutput[i];
      x0[i] = (sample[i] - b * modelOutput[i]) / a;
    } else {
      x0[i] = a * sample[i] - b * modelOutput[i];
      eps[i] = a * modelOutput[i] + b * sample[i];
    }
  }
  return { x0, eps };
}
