import type { SeededRandom } from '../random.js';
import type { NoiseTables } from './noiseTables.js';
import type { SchedulerConfig } from './schedulerConfig.js';
import { type Scheduler, type SchedulerRun, StepCursor } from './schedulerRun.js';
import { karrasSigmas, runSigmas, sigmaToTimestep } from './sigmaSchedule.js';
import { dpmTimesteps } from './timesteps.js';

/**
 * DPM-Solver++(2M) (Lu et al. 2022, Alg. 2, midpoint form), as diffusers' DPMSolverMultistepScheduler
 * with algorithm_type "dpmsolver++", solver_order 2. In terms of α_t = 1/√(σ²+1), σ_t = σ α_t and
 * λ = log α_t − log σ_t, with h = λ_t − λ_s:
 *   first order:  x_t = (σ_t/σ_s) x − α_t (e^{−h} − 1) x̂₀
 *   second order: x_t = (σ_t/σ_s) x − α_t (e^{−h} − 1) (D₀ + ½ D₁),  D₁ = (x̂₀ − x̂₀_prev) h / h_prev.
 * The first step and (with a final σ of 0) the last step are first order.
 */
export class DpmSolverPlusPlus2MScheduler implements Scheduler {
  readonly name = 'dpmpp_2m' as const;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly tables: NoiseTables,
  ) {}

  setTimesteps(numInferenceSteps: number, _random?: SeededRandom): SchedulerRun {
    const { config, tables } = this;
    const { timesteps, sigmas } = config.useKarrasSigmas ? karrasRun(tables, numInferenceSteps) : { timesteps: dpmTimesteps(config, numInferenceSteps), sigmas: null };
    const runSigmasTable = sigmas ?? runSigmas(tables, timesteps);
    if (config.finalSigmasType === 'sigma_min') runSigmasTable[timesteps.length] = tables.sigmas[0];
    const cursor = new StepCursor(timesteps);
    const alphaOf = (sigma: number) => 1 / Math.sqrt(sigma * sigma + 1);
    const lambdaOf = (sigma: number) => Math.log(alphaOf(sigma)) - Math.log(sigma * alphaOf(sigma));
    let previousX0: Float64Array | null = null;
    return {
      timesteps,
      initNoiseSigma: 1,
      // Its latents are variance-preserving: x = α x₀ + σα ε with α = 1/√(σ²+1), so ᾱ = α².
      noiseLevel: (index) => ({ alphaProd: alphaOf(runSigmasTable[index]) ** 2 }),
      startAt: (index) => cursor.startAt(index),
      scaleModelInput: (sample) => sample,
      step(modelOutput, t, sample) {
        const i = cursor.advance(t);
        const sigmaS = runSigmasTable[i];
        const alphaS = alphaOf(sigmaS);
        const sigmaSt = sigmaS * alphaS;
        const x0 = new Float64Array(sample.length);
        for (let k = 0; k < sample.length; k++) {
          x0[k] = config.predictionType === 'epsilon' ? (sample[k] - sigmaSt * modelOutput[k]) / alphaS : alphaS * sample[k] - sigmaSt * modelOutput[k];
        }
        const sigmaNext = runSigmasTable[i + 1];
        const prevSample = new Float32Array(sample.length);
        const last = i === timesteps.length - 1;
        const firstOrder = previousX0 === null || (last && (config.finalSigmasType === 'zero' || timesteps.length < 15));
        if (sigmaNext === 0) {
          // λ → ∞ at σ = 0: the update reduces to x̂₀.
          for (let k = 0; k < sample.length; k++) prevSample[k] = x0[k];
        } else {
          const alphaT = alphaOf(sigmaNext);
          const sigmaT = sigmaNext * alphaT;
          const h = lambdaOf(sigmaNext) - lambdaOf(sigmaS);
          const ratio = sigmaT / sigmaSt;
          const coeff = alphaT * (Math.exp(-h) - 1);
          if (firstOrder) {
            for (let k = 0; k < sample.length; k++) prevSample[k] = ratio * sample[k] - coeff * x0[k];
          } else {
            const hPrev = lambdaOf(sigmaS) - lambdaOf(runSigmasTable[i - 1]);
            const r0 = hPrev / h;
            for (let k = 0; k < sample.length; k++) {
              const d1 = (x0[k] - previousX0![k]) / r0;
              prevSample[k] = ratio * sample[k] - coeff * x0[k] - 0.5 * coeff * d1;
            }
          }
        }
        previousX0 = x0;
        return { prevSample, predOriginalSample: Float32Array.from(x0) };
      },
    };
  }
}

/**
 * With use_karras_sigmas, DPM-Solver++ spans the whole training range (σ_min to σ_max of the table),
 * and its integer timesteps are the rounded inverse of those levels; the final level stays 0.
 */
function karrasRun(tables: NoiseTables, steps: number): { timesteps: number[]; sigmas: Float64Array } {
  const trained = tables.sigmas;
  const karras = karrasSigmas(trained[0], trained[trained.length - 1], steps);
  return { timesteps: karras.map((s) => Math.round(sigmaToTimestep(s, trained))), sigmas: Float64Array.from([...karras, 0]) };
}
