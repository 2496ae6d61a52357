import { InvalidArgumentError } from '../errors.js';
import type { SeededRandom } from '../random.js';
import type { NoiseTables } from './noiseTables.js';
import type { SchedulerConfig } from './schedulerConfig.js';
import { type Scheduler, type SchedulerRun, StepCursor, drawNoise, predictOriginalAndNoise } from './schedulerRun.js';

/** diffusers' LCMScheduler fixes σ_data at 0.5 for its boundary condition. */
const SIGMA_DATA = 0.5;

/**
 * Latent Consistency Models' multistep sampling (Luo et al. 2023), as diffusers' LCMScheduler:
 * the consistency function f(x_t, t) = c_skip(t) x_t + c_out(t) x̂₀, with
 * c_skip = σ_d² / ((s t)² + σ_d²), c_out = s t / √((s t)² + σ_d²) (s = timestep_scaling); then, but
 * for the last step, fresh noise to the next timestep: x_{t'} = √ᾱ_{t'} f + √(1 − ᾱ_{t'}) z.
 * Timesteps are evenly spaced over the distillation schedule (k, 2k, …, original_inference_steps · k, minus one).
 */
export class LcmScheduler implements Scheduler {
  readonly name = 'lcm' as const;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly tables: NoiseTables,
  ) {}

  setTimesteps(numInferenceSteps: number, random?: SeededRandom): SchedulerRun {
    const { config, tables } = this;
    const original = config.originalInferenceSteps;
    if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1 || numInferenceSteps > original) {
      throw new InvalidArgumentError('num_inference_steps', `LCM takes 1 to ${original} steps (its original_inference_steps), got ${numInferenceSteps}`);
    }
    const k = Math.floor(config.numTrainTimesteps / original);
    const origin = Array.from({ length: original }, (_, i) => (original - i) * k - 1);
    const timesteps = Array.from({ length: numInferenceSteps }, (_, i) => origin[Math.floor((i * original) / numInferenceSteps)]);
    const cursor = new StepCursor(timesteps);
    const finalAlphaProd = config.setAlphaToOne ? 1 : tables.alphasCumprod[0];
    return {
      timesteps,
      initNoiseSigma: 1,
      noiseLevel: (index) => ({ alphaProd: tables.alphasCumprod[timesteps[index]] }),
      startAt: (index) => cursor.startAt(index),
      scaleModelInput: (sample) => sample,
      step(modelOutput, t, sample, noise) {
        const i = cursor.advance(t);
        const last = i === timesteps.length - 1;
        const prevT = last ? t : timesteps[i + 1];
        const alphaProd = tables.alphasCumprod[t];
        const alphaProdPrev = prevT >= 0 ? tables.alphasCumprod[prevT] : finalAlphaProd;
        const scaled = t * config.timestepScaling;
        const cSkip = SIGMA_DATA ** 2 / (scaled * scaled + SIGMA_DATA ** 2);
        const cOut = scaled / Math.sqrt(scaled * scaled + SIGMA_DATA ** 2);
        const { x0 } = predictOriginalAndNoise(config.predictionType, modelOutput, sample, alphaProd);
        const denoised = Float32Array.from(x0, (v, k) => cOut * v + cSkip * sample[k]);
        if (last) return { prevSample: denoised, predOriginalSample: denoised };
        const z = drawNoise(sample.length, noise, random);
        const a = Math.sqrt(alphaProdPrev);
        const b = Math.sqrt(1 - alphaProdPrev);
        return { prevSample: Float32Array.from(denoised, (v, k) => a * v + b * z[k]), predOriginalSample: denoised };
      },
    };
  }
}
