import { InvalidArgumentError } from './errors.js';
import type { NoiseLevel, SchedulerRun } from './schedulers/schedulerRun.js';

/**
 * How many of a run's steps a warm-started image runs: the last ⌊N × s⌋ of N, as diffusers' img2img
 * (`init_timestep = int(N * strength)`), so s = 1 runs them all.
 */
export function warmStartSteps(runSteps: number, frameStrength: number): number {
  return Math.min(Math.floor(runSteps * frameStrength), runSteps);
}

/** Refuses a frame strength this run cannot honour: one that leaves no step, or a scheduler that cannot start partway. */
export function checkFrameStrength(run: SchedulerRun, scheduler: string, frameStrength: number): void {
  if (frameStrength >= 1) return;
  const steps = run.timesteps.length;
  if (warmStartSteps(steps, frameStrength) < 1) {
    throw new InvalidArgumentError('frame_strength', `${frameStrength} of ${steps} steps leaves no step to run; use at least ${(1 / steps).toPrecision(3)} or more steps`);
  }
  if (run.noiseLevel(0) === null) {
    throw new InvalidArgumentError('frame_strength', `scheduler ${scheduler} cannot start partway through its schedule (its warm-up needs every step); use ddim, ddpm, euler, euler_ancestral, lms, dpmpp_2m or lcm, or frame_strength 1`);
  }
}

/** `original` latents noised to `level`: √ᾱ x₀ + √(1−ᾱ) ε, or x₀ + σ ε. */
export function noisedLatents(level: NoiseLevel, original: Float32Array, noise: Float32Array): Float32Array {
  const out = new Float32Array(original.length);
  if ('alphaProd' in level) {
    const a = Math.sqrt(level.alphaProd);
    const b = Math.sqrt(1 - level.alphaProd);
    for (let i = 0; i < out.length; i++) out[i] = a * original[i] + b * noise[i];
  } else {
    for (let i = 0; i < out.length; i++) out[i] = original[i] + level.sigma * noise[i];
  }
  return out;
}
