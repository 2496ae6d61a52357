import type { SeededRandom } from '../random.js';
import type { NoiseTables } from './noiseTables.js';
import type { SchedulerConfig } from './schedulerConfig.js';
import { InvalidArgumentError } from '../errors.js';
import { type RunOptions, type Scheduler, type SchedulerRun, StepCursor, drawNoise, predictOriginalAndNoise } from './schedulerRun.js';
import { discreteTimesteps } from './timesteps.js';

/**
 * DDIM (Song et al. 2021), eq. 12: x_{t'} = √ᾱ_{t'} x̂₀ + √(1 − ᾱ_{t'} − σ_t²) ε̂ + σ_t z,
 * σ_t = η √((1 − ᾱ_{t'}) / (1 − ᾱ_t)) √(1 − ᾱ_t / ᾱ_{t'}), with t' = t − T / n as diffusers takes it.
 */
export class DdimScheduler implements Scheduler {
  readonly name = 'ddim' as const;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly tables: NoiseTables,
    /** The η a run gets when its options name none. */
    private readonly defaultEta = 0,
  ) {}

  setTimesteps(numInferenceSteps: number, random?: SeededRandom, options: RunOptions = {}): SchedulerRun {
    const { config, tables } = this;
    const eta = options.eta ?? this.defaultEta;
    if (!Number.isFinite(eta) || eta < 0 || eta > 1) throw new InvalidArgumentError('eta', `must be in [0, 1], got ${eta}`);
    const timesteps = discreteTimesteps(config, numInferenceSteps);
    const cursor = new StepCursor(timesteps);
    const stride = Math.floor(config.numTrainTimesteps / numInferenceSteps);
    const finalAlphaProd = config.setAlphaToOne ? 1 : tables.alphasCumprod[0];
    return {
      timesteps,
      initNoiseSigma: 1,
      noiseLevel: (index) => ({ alphaProd: tables.alphasCumprod[timesteps[index]] }),
      startAt: (index) => cursor.startAt(index),
      scaleModelInput: (sample) => sample,
      step(modelOutput, t, sample, noise) {
        cursor.advance(t);
        const prevT = t - stride;
        const alphaProd = tables.alphasCumprod[t];
        const alphaProdPrev = prevT >= 0 ? tables.alphasCumprod[prevT] : finalAlphaProd;
        const { x0, eps } = predictOriginalAndNoise(config.predictionType, modelOutput, sample, alphaProd);
        if (config.clipSample) {
          for (let k = 0; k < x0.length; k++) x0[k] = Math.min(config.clipSampleRange, Math.max(-config.clipSampleRange, x0[k]));
        }
        const variance = ((1 - alphaProdPrev) / (1 - alphaProd)) * (1 - alphaProd / alphaProdPrev);
        const std = eta * Math.sqrt(variance);
        const direction = Math.sqrt(1 - alphaProdPrev - std * std);
        const prevSample = new Float32Array(sample.length);
        for (let k = 0; k < sample.length; k++) prevSample[k] = Math.sqrt(alphaProdPrev) * x0[k] + direction * eps[k];
        if (eta > 0) {
          const z = drawNoise(sample.length, noise, random);
          for (let k = 0; k < sample.length; k++) prevSample[k] += std * z[k];
        }
        return { prevSample, predOriginalSample: Float32Array.from(x0) };
      },
    };
  }
}
