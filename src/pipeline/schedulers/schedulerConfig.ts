import { BundleError } from '../errors.js';

export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';
export type PredictionType = 'epsilon' | 'v_prediction';

/** diffusers' `scheduler_config.json`, camelCased; unknown keys are ignored so any SD 1.x file loads unchanged. */
export interface SchedulerConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
  trainedBetas: number[] | null;
  predictionType: PredictionType;
  timestepSpacing: TimestepSpacing;
  stepsOffset: number;
  setAlphaToOne: boolean;
  clipSample: boolean;
  clipSampleRange: number;
  /** DPM-Solver++: 'zero' (diffusers' default) ends at sigma 0, 'sigma_min' at the smallest training sigma. */
  finalSigmasType: 'zero' | 'sigma_min';
  /** PNDM: start with linear multistep at once, without the Runge-Kutta warm-up (SD 1.x ships true). */
  skipPrkSteps: boolean;
  /** Euler, Euler ancestral, DPM++ 2M and LMS: Karras et al.'s noise levels instead of the training ones. */
  useKarrasSigmas: boolean;
  /** LCM: the distillation schedule's step count, and the boundary-condition time scaling. */
  originalInferenceSteps: number;
  timestepScaling: number;
  /** diffusers' class that wrote the file; a bundle without stepframe.json defaults to its scheduler. */
  className: string | null;
}

type Raw = Record<string, unknown>;

function pick<T>(raw: Raw, key: string, fallback: T, ok: (v: unknown) => boolean, expected: string): T {
  const value = raw[key];
  if (value === undefined || value === null) return fallback;
  if (!ok(value)) throw new BundleError(`scheduler_config.json: ${key} must be ${expected}, got ${JSON.stringify(value)}`);
  return value as T;
}

const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const oneOf = (...values: string[]) => (v: unknown) => values.includes(v as string);

/** Parses diffusers' config with diffusers' defaults (DDPMScheduler's) for missing keys. */
export function parseSchedulerConfig(raw: unknown): SchedulerConfig {
  if (typeof raw !== 'object' || raw === null) throw new BundleError('scheduler_config.json must be a JSON object');
  const r = raw as Raw;
  if (r.thresholding === true) throw new BundleError('scheduler_config.json: thresholding (dynamic thresholding) is not supported');
  return {
    numTrainTimesteps: pick(r, 'num_train_timesteps', 1000, (v) => Number.isInteger(v) && (v as number) > 1, 'an integer > 1'),
    betaStart: pick(r, 'beta_start', 0.0001, isNum, 'a number'),
    betaEnd: pick(r, 'beta_end', 0.02, isNum, 'a number'),
    betaSchedule: pick(r, 'beta_schedule', 'linear', oneOf('linear', 'scaled_linear', 'squaredcos_cap_v2'), 'linear, scaled_linear or squaredcos_cap_v2'),
    trainedBetas: pick(r, 'trained_betas', null, (v) => Array.isArray(v) && v.every(isNum), 'a list of numbers'),
    predictionType: pick(r, 'prediction_type', 'epsilon', oneOf('epsilon', 'v_prediction'), 'epsilon or v_prediction'),
    timestepSpacing: pick(r, 'timestep_spacing', 'leading', oneOf('leading', 'trailing', 'linspace'), 'leading, trailing or linspace'),
    stepsOffset: pick(r, 'steps_offset', 0, (v) => Number.isInteger(v) && (v as number) >= 0, 'a non-negative integer'),
    setAlphaToOne: pick(r, 'set_alpha_to_one', true, (v) => typeof v === 'boolean', 'a boolean'),
    clipSample: pick(r, 'clip_sample', true, (v) => typeof v === 'boolean', 'a boolean'),
    clipSampleRange: pick(r, 'clip_sample_range', 1, isNum, 'a number'),
    finalSigmasType: pick(r, 'final_sigmas_type', 'zero', oneOf('zero', 'sigma_min'), 'zero or sigma_min'),
    skipPrkSteps: pick(r, 'skip_prk_steps', false, (v) => typeof v === 'boolean', 'a boolean'),
    useKarrasSigmas: pick(r, 'use_karras_sigmas', false, (v) => typeof v === 'boolean', 'a boolean'),
    className: pick(r, '_class_name', null, (v) => typeof v === 'string', 'a string'),
    originalInferenceSteps: pick(r, 'original_inference_steps', 50, (v) => Number.isInteger(v) && (v as number) > 0, 'a positive integer'),
    timestepScaling: pick(r, 'timestep_scaling', 10, isNum, 'a number'),
  };
}
