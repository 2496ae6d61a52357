import type { SeededRandom } from '../random.js';
import type { NoiseTables } from './noiseTables.js';
import type { SchedulerConfig } from './schedulerConfig.js';
import { type Scheduler, type SchedulerRun, StepCursor } from './schedulerRun.js';
import { eulerInitNoiseSigma, scaleBySigma, sigmaPredictOriginal, sigmaRun } from './sigmaSchedule.js';
import { continuousTimesteps } from './timesteps.js';

/** Euler's method on the probability-flow ODE (Karras et al. 2022, Alg. 2 with S_churn = 0): x ← x + (x − x̂₀)/σ · (σ' − σ). */
export class EulerScheduler implements Scheduler {
  readonly name = 'euler' as const;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly tables: NoiseTables,
  ) {}

  setTimesteps(numInferenceSteps: number, _random?: SeededRandom): SchedulerRun {
    const { config } = this;
    const { timesteps, sigmas } = sigmaRun(config, this.tables, continuousTimesteps(config, numInferenceSteps));
    const cursor = new StepCursor(timesteps);
    return {
      timesteps,
      initNoiseSigma: eulerInitNoiseSigma(config, Math.max(...sigmas)),
      noiseLevel: (index) => ({ sigma: sigmas[index] }),
      startAt: (index) => cursor.startAt(index),
      scaleModelInput: (sample, t) => scaleBySigma(sample, sigmas[timesteps.indexOf(t)]),
      step(modelOutput, t, sample) {
        const i = cursor.advance(t);
        const sigma = sigmas[i];
        const x0 = sigmaPredictOriginal(config.predictionType, modelOutput, sample, sigma);
        const dt = sigmas[i + 1] - sigma;
        const prevSample = new Float32Array(sample.length);
        for (let k = 0; k < sample.length; k++) prevSample[k] = sample[k] + ((sample[k] - x0[k]) / sigma) * dt;
        return { prevSample, predOriginalSample: Float32Array.from(x0) };
      },
    };
  }
}
