import { InvalidArgumentError } from '../errors.js';
import type { SchedulerConfig } from './schedulerConfig.js';

/**
 * Integer timesteps for DDPM and DDIM, descending, following diffusers' `timestep_spacing`:
 * `leading` (SD 1.x: 0, k, 2k, … plus steps_offset), `trailing` (ends exactly at T−1) and `linspace`.
 */
export function discreteTimesteps(config: SchedulerConfig, steps: number): number[] {
  const T = config.numTrainTimesteps;
  checkSteps(steps, T);
  if (config.timestepSpacing === 'linspace') return linspace(0, T - 1, steps).map(roundHalfEven).reverse();
  if (config.timestepSpacing === 'leading') {
    const ratio = Math.floor(T / steps);
    return Array.from({ length: steps }, (_, i) => i * ratio + config.stepsOffset).reverse();
  }
  return arangeDown(T, T / steps).map((t) => roundHalfEven(t) - 1);
}

/** Float timesteps for the sigma-based solvers (Euler, Euler ancestral), as diffusers spaces them. */
export function continuousTimesteps(config: SchedulerConfig, steps: number): number[] {
  const T = config.numTrainTimesteps;
  checkSteps(steps, T);
  if (config.timestepSpacing === 'linspace') return linspace(0, T - 1, steps).reverse();
  if (config.timestepSpacing === 'leading') {
    const ratio = Math.floor(T / steps);
    return Array.from({ length: steps }, (_, i) => i * ratio + config.stepsOffset).reverse();
  }
  return arangeDown(T, T / steps).map((t) => roundHalfEven(t) - 1);
}

/** DPM-Solver multistep spaces n+1 points and drops the last, as diffusers does. */
export function dpmTimesteps(config: SchedulerConfig, steps: number): number[] {
  const T = config.numTrainTimesteps;
  checkSteps(steps, T);
  if (config.timestepSpacing === 'linspace') {
    return linspace(0, T - 1, steps + 1).map(roundHalfEven).reverse().slice(0, -1);
  }
  if (config.timestepSpacing === 'leading') {
    const ratio = Math.floor(T / (steps + 1));
    return Array.from({ length: steps + 1 }, (_, i) => i * ratio + config.stepsOffset).reverse().slice(0, -1);
  }
  return arangeDown(T, T / steps).map((t) => roundHalfEven(t) - 1);
}

function checkSteps(steps: number, trainSteps: number): void {
  if (!Number.isInteger(steps) || steps < 1 || steps > trainSteps) {
    throw new InvalidArgumentError('num_inference_steps', `must be an integer in [1, ${trainSteps}], got ${steps}`);
  }
}

function linspace(start: number, stop: number, count: number): number[] {
  if (count === 1) return [start];
  const step = (stop - start) / (count - 1);
  return Array.from({ length: count }, (_, i) => (i === count - 1 ? stop : start + i * step));
}

/** numpy.arange(start, 0, -step). */
function arangeDown(start: number, step: number): number[] {
  const count = Math.ceil(start / step);
  return Array.from({ length: count }, (_, i) => start - i * step);
}

/** numpy.round: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
