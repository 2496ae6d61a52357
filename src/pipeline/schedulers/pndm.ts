import type { NoiseTables } from './noiseTables.js';
import type { SchedulerConfig } from './schedulerConfig.js';
import { type Scheduler, type SchedulerRun, StepCursor } from './schedulerRun.js';
import { discreteTimesteps } from './timesteps.js';

/** PNDM's Runge-Kutta warm-up and linear multistep use four derivatives. */
const ORDER = 4;

/**
 * PNDM (Liu et al. 2022), SD 1.x's shipped scheduler. With `skip_prk_steps` (as SD 1.x ships it)
 * it is PLMS from the first step: ε̃ is a linear-multistep combination of the last four model
 * outputs, (55 e₀ − 59 e₋₁ + 37 e₋₂ − 9 e₋₃) / 24, warmed up through lower orders, and the
 * second-to-last training timestep is visited twice so the first step is a second-order (Heun)
 * step. Without it, four Runge-Kutta stages per step warm up the first three derivatives. Each
 * step applies the transfer x_{t'} = √(ᾱ_{t'}/ᾱ_t) x_t − (ᾱ_{t'} − ᾱ_t) ε̃ / (ᾱ_t √(1−ᾱ_{t'}) + √(ᾱ_t (1−ᾱ_t) ᾱ_{t'})).
 */
export class PndmScheduler implements Scheduler {
  readonly name = 'pndm' as const;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly tables: NoiseTables,
  ) {}

  setTimesteps(numInferenceSteps: number): SchedulerRun {
    const { config, tables } = this;
    const T = config.numTrainTimesteps;
    const ratio = Math.floor(T / numInferenceSteps);
    const ascending = discreteTimesteps(config, numInferenceSteps).reverse();
    const { prk, plms } = config.skipPrkSteps ? { prk: [], plms: plmsOnly(ascending) } : withRungeKutta(ascending, ratio);
    const timesteps = [...prk, ...plms];
    const cursor = new StepCursor(timesteps);
    const finalAlphaProd = config.setAlphaToOne ? 1 : tables.alphasCumprod[0];
    const alphaAt = (t: number) => (t >= 0 ? tables.alphasCumprod[t] : finalAlphaProd);
    const ets: Float32Array[] = [];
    let counter = 0;
    let curSample: Float32Array | null = null;
    let curModelOutput: Float64Array | null = null;

    const transfer = (sample: Float32Array, t: number, prevT: number, output: ArrayLike<number>): Float32Array => {
      const alphaProd = alphaAt(t);
      const alphaProdPrev = alphaAt(prevT);
      const betaProd = 1 - alphaProd;
      const betaProdPrev = 1 - alphaProdPrev;
      const sampleCoeff = Math.sqrt(alphaProdPrev / alphaProd);
      const denominator = alphaProd * Math.sqrt(betaProdPrev) + Math.sqrt(alphaProd * betaProd * alphaProdPrev);
      const prev = new Float32Array(sample.length);
      for (let k = 0; k < sample.length; k++) {
        // v-prediction: ε̂ = √ᾱ v̂ + √(1−ᾱ) x_t.
        const eps = config.predictionType === 'v_prediction' ? Math.sqrt(alphaProd) * output[k] + Math.sqrt(betaProd) * sample[k] : output[k];
        prev[k] = sampleCoeff * sample[k] - ((alphaProdPrev - alphaProd) * eps) / denominator;
      }
      return prev;
    };

    const stepRungeKutta = (output: Float32Array, stepT: number, sample: Float32Array): Float32Array => {
      // Every stage restarts from the step's first timestep; odd stages reach the midpoint.
      const prevT = stepT - (counter % 2 ? 0 : Math.floor(ratio / 2));
      const t = prk[Math.floor(counter / 4) * 4];
      const phase = counter % 4;
      let combined: ArrayLike<number> = output;
      if (phase === 0) {
        curModelOutput = Float64Array.from(output, (v) => v / 6);
        ets.push(output);
        curSample = sample;
      } else if (phase === 1 || phase === 2) {
        for (let k = 0; k < output.length; k++) curModelOutput![k] += output[k] / 3;
      } else {
        combined = Float64Array.from(output, (v, k) => curModelOutput![k] + v / 6);
        curModelOutput = null;
      }
      counter++;
      return transfer(curSample ?? sample, t, prevT, combined);
    };

    const stepLinearMultistep = (output: Float32Array, t: number, sample: Float32Array): Float32Array => {
      let prevT = t - ratio;
      if (counter !== 1) {
        if (ets.length > ORDER - 1) ets.splice(0, ets.length - (ORDER - 1));
        ets.push(output);
      } else {
        // The repeated timestep: redo the first step from its start with the averaged derivative.
        prevT = t;
        t = t + ratio;
      }
      const n = ets.length;
      let combined: ArrayLike<number>;
      let from = sample;
      if (n === 1 && counter === 0) {
        combined = output;
        curSample = sample;
      } else if (n === 1 && counter === 1) {
        combined = Float64Array.from(output, (v, k) => (v + ets[0][k]) / 2);
        from = curSample!;
        curSample = null;
      } else if (n === 2) {
        combined = Float64Array.from(output, (_, k) => (3 * ets[1][k] - ets[0][k]) / 2);
      } else if (n === 3) {
        combined = Float64Array.from(output, (_, k) => (23 * ets[2][k] - 16 * ets[1][k] + 5 * ets[0][k]) / 12);
      } else {
        combined = Float64Array.from(output, (_, k) => (55 * ets[3][k] - 59 * ets[2][k] + 37 * ets[1][k] - 9 * ets[0][k]) / 24);
      }
      counter++;
      return transfer(from, t, prevT, combined);
    };

    return {
      timesteps,
      initNoiseSigma: 1,
      noiseLevel: () => null,
      startAt: (index) => cursor.startAt(index),
      scaleModelInput: (sample) => sample,
      step(modelOutput, t, sample) {
        cursor.advance(t);
        const prevSample = counter < prk.length ? stepRungeKutta(modelOutput, t, sample) : stepLinearMultistep(modelOutput, t, sample);
        return { prevSample };
      },
    };
  }
}

/** diffusers' skip_prk_steps order: descending, with the second-to-last training step repeated. */
function plmsOnly(ascending: number[]): number[] {
  const n = ascending.length;
  return [...ascending.slice(0, -1), ...ascending.slice(n - 2, n - 1), ...ascending.slice(n - 1)].reverse();
}

/** The Runge-Kutta warm-up's timesteps (each of the last four, and its midpoint, repeated), then PLMS. */
function withRungeKutta(ascending: number[], ratio: number): { prk: number[]; plms: number[] } {
  const last = ascending.slice(-ORDER);
  const offsets = [0, Math.floor(ratio / 2)];
  const repeated = last.flatMap((t) => [t, t]).map((t, i) => t + offsets[i % 2]);
  const doubled = repeated.slice(0, -1).flatMap((t) => [t, t]).slice(1, -1);
  return { prk: doubled.reverse(), plms: ascending.slice(0, -3).reverse() };
}
