import type { SeededRandom } from '../random.js';
import type { NoiseTables } from './noiseTables.js';
import type { SchedulerConfig } from './schedulerConfig.js';
import { type Scheduler, type SchedulerRun, StepCursor, drawNoise, predictOriginalAndNoise } from './schedulerRun.js';
import { discreteTimesteps } from './timesteps.js';

/**
 * DDPM ancestral sampling (Ho et al. 2020), the paper's sampler, with diffusers' "fixed_small"
 * variance: x_{t'} = c₀ x̂₀ + c_t x_t + σ z, where t' is the next timestep of the run,
 * c₀ = √ᾱ_{t'} β̃ / (1 − ᾱ_t), c_t = √α̃ (1 − ᾱ_{t'}) / (1 − ᾱ_t), σ² = (1 − ᾱ_{t'}) / (1 − ᾱ_t) · β̃,
 * with α̃ = ᾱ_t / ᾱ_{t'} and β̃ = 1 − α̃.
 */
export class DdpmScheduler implements Scheduler {
  readonly name = 'ddpm' as const;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly tables: NoiseTables,
  ) {}

  setTimesteps(numInferenceSteps: number, random?: SeededRandom): SchedulerRun {
    const { config, tables } = this;
    const timesteps = discreteTimesteps(config, numInferenceSteps);
    const cursor = new StepCursor(timesteps);
    return {
      timesteps,
      initNoiseSigma: 1,
      noiseLevel: (index) => ({ alphaProd: tables.alphasCumprod[timesteps[index]] }),
      startAt: (index) => cursor.startAt(index),
      scaleModelInput: (sample) => sample,
      step(modelOutput, t, sample, noise) {
        const i = cursor.advance(t);
        const prevT = i + 1 < timesteps.length ? timesteps[i + 1] : -1;
        const alphaProd = tables.alphasCumprod[t];
        const alphaProdPrev = prevT >= 0 ? tables.alphasCumprod[prevT] : 1;
        const betaProd = 1 - alphaProd;
        const betaProdPrev = 1 - alphaProdPrev;
        const currentAlpha = alphaProd / alphaProdPrev;
        const currentBeta = 1 - currentAlpha;
        const { x0 } = predictOriginalAndNoise(config.predictionType, modelOutput, sample, alphaProd);
        if (config.clipSample) {
          for (let k = 0; k < x0.length; k++) x0[k] = Math.min(config.clipSampleRange, Math.max(-config.clipSampleRange, x0[k]));
        }
        const c0 = (Math.sqrt(alphaProdPrev) * currentBeta) / betaProd;
        const ct = (Math.sqrt(currentAlpha) * betaProdPrev) / betaProd;
        const prevSample = new Float32Array(sample.length);
        for (let k = 0; k < sample.length; k++) prevSample[k] = c0 * x0[k] + ct * sample[k];
        if (t > 0) {
          const std = Math.sqrt(Math.max((betaProdPrev / betaProd) * currentBeta, 1e-20));
          const z = drawNoise(sample.length, noise, random);
          for (let k = 0; k < sample.length; k++) prevSample[k] += std * z[k];
        }
        return { prevSample, predOriginalSample: Float32Array.from(x0) };
      },
    };
  }
}
