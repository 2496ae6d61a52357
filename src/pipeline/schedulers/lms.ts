import type { NoiseTables } from './noiseTables.js';
import type { SchedulerConfig } from './schedulerConfig.js';
import { type Scheduler, type SchedulerRun, StepCursor } from './schedulerRun.js';
import { eulerInitNoiseSigma, scaleBySigma, sigmaPredictOriginal, sigmaRun } from './sigmaSchedule.js';
import { continuousTimesteps } from './timesteps.js';

/** diffusers' LMSDiscreteScheduler keeps the last four derivatives. */
const ORDER = 4;

// Four-point Gauss-Legendre nodes and weights on [-1, 1]: exact for the cubic Lagrange bases below.
const GAUSS_NODES = [-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526];
const GAUSS_WEIGHTS = [0.3478548451374538, 0.6521451548625461, 0.6521451548625461, 0.3478548451374538];

/**
 * Linear multistep in σ (Karras et al. 2022's "LMS", k-diffusion's sample_lms): with derivatives
 * d_j = (x − x̂₀)/σ_j at the last (up to) four levels, x ← x + Σ_j c_j d_{i−j}, where
 * c_j = ∫_{σ_i}^{σ_{i+1}} Π_{k≠j} (τ − σ_{i−k}) / (σ_{i−j} − σ_{i−k}) dτ, the Lagrange basis
 * polynomial through those levels, integrated exactly (diffusers integrates it numerically).
 */
export class LmsScheduler implements Scheduler {
  readonly name = 'lms' as const;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly tables: NoiseTables,
  ) {}

  setTimesteps(numInferenceSteps: number): SchedulerRun {
    const { config } = this;
    const { timesteps, sigmas } = sigmaRun(config, this.tables, continuousTimesteps(config, numInferenceSteps));
    const cursor = new StepCursor(timesteps);
    const derivatives: Float64Array[] = [];
    const coefficient = (order: number, i: number, j: number): number => {
      const basis = (tau: number) => {
        let product = 1;
        for (let k = 0; k < order; k++) if (k !== j) product *= (tau - sigmas[i - k]) / (sigmas[i - j] - sigmas[i - k]);
        return product;
      };
      const [a, b] = [sigmas[i], sigmas[i + 1]];
      let sum = 0;
      for (let q = 0; q < GAUSS_NODES.length; q++) sum += GAUSS_WEIGHTS[q] * basis(((b - a) / 2) * GAUSS_NODES[q] + (a + b) / 2);
      return ((b - a) / 2) * sum;
    };
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
        derivatives.push(Float64Array.from(sample, (x, k) => (x - x0[k]) / sigma));
        if (derivatives.length > ORDER) derivatives.shift();
        // As many past derivatives as there are (fewer after a warm start began partway), up to ORDER.
        const order = Math.min(derivatives.length, ORDER);
        const prevSample = Float32Array.from(sample);
        for (let j = 0; j < order; j++) {
          const c = coefficient(order, i, j);
          const d = derivatives[derivatives.length - 1 - j];
          for (let k = 0; k < sample.length; k++) prevSample[k] += c * d[k];
        }
        return { prevSample, predOriginalSample: Float32Array.from(x0) };
      },
    };
  }
}
