import type { SeededRandom } from '../random.js';
import type { NoiseTables } from './noiseTables.js';
import type { SchedulerConfig } from './schedulerConfig.js';
import { type Scheduler, type SchedulerRun, StepCursor, drawNoise } from './schedulerRun.js';
import { eulerInitNoiseSigma, scaleBySigma, sigmaPredictOriginal, sigmaRun } from './sigmaSchedule.js';
import { continuousTimesteps } from './timesteps.js';

/**
 * Ancestral Euler (k-diffusion's sample_euler_ancestral): step deterministically to σ_down, then add
 * σ_up z, where σ_up = √(σ'² (σ² − σ'²) / σ²) and σ_down = √(σ'² − σ_up²).
 */
export class EulerAncestralScheduler implements Scheduler {
  readonly name = 'euler_ancestral' as const;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly tables: NoiseTables,
  ) {}

  setTimesteps(numInferenceSteps: number, random?: SeededRandom): SchedulerRun {
    const { config } = this;
    const { timesteps, sigmas } = sigmaRun(config, this.tables, continuousTimesteps(config, numInferenceSteps));
    const cursor = new StepCursor(timesteps);
    return {
      timesteps,
      initNoiseSigma: eulerInitNoiseSigma(config, Math.max(...sigmas)),
      noiseLevel: (index) => ({ sigma: sigmas[index] }),
      startAt: (index) => cursor.startAt(index),
      scaleModelInput: (sample, t) => scaleBySigma(sample, sigmas[timesteps.indexOf(t)]),
      step(modelOutput, t, sample, noise) {
        const i = cursor.advance(t);
        const sigma = sigmas[i];
        const sigmaTo = sigmas[i + 1];
        const x0 = sigmaPredictOriginal(config.predictionType, modelOutput, sample, sigma);
        const sigmaUp = Math.sqrt((sigmaTo * sigmaTo * (sigma * sigma - sigmaTo * sigmaTo)) / (sigma * sigma));
        const sigmaDown = Math.sqrt(sigmaTo * sigmaTo - sigmaUp * sigmaUp);
        const z = drawNoise(sample.length, noise, random);
        const prevSample = new Float32Array(sample.length);
        for (let k = 0; k < sample.length; k++) {
          prevSample[k] = sample[k] + ((sample[k] - x0[k]) / sigma) * (sigmaDown - sigma) + z[k] * sigmaUp;
        }
        return { prevSample, predOriginalSample: Float32Array.from(x0) };
      },
    };
  }
}
