import { BundleError } from '../errors.js';
import { quoteInput } from '../quoteInput.js';
import type { SchedulerName } from './schedulerRun.js';

/** diffusers' scheduler classes and the stepframe scheduler that reproduces each. */
export const SCHEDULER_CLASSES: Readonly<Record<string, SchedulerName>> = {
  DDPMScheduler: 'ddpm',
  DDIMScheduler: 'ddim',
  PNDMScheduler: 'pndm',
  LMSDiscreteScheduler: 'lms',
  EulerDiscreteScheduler: 'euler',
  EulerAncestralDiscreteScheduler: 'euler_ancestral',
  DPMSolverMultistepScheduler: 'dpmpp_2m',
  LCMScheduler: 'lcm',
};

/** Classes a real export may name that need more than a sampler: said plainly instead of "unknown". */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  TCDScheduler: 'TCD models are not served yet; serve the base model',
};

/**
 * The scheduler a bundle's `scheduler_config.json` names, or a BundleError naming the class and what
 * would work. A file without `_class_name` (hand-written) gives null: the bundle's own default holds.
 */
export function schedulerForConfig(raw: Record<string, unknown>, file: string): SchedulerName | null {
  const className = raw._class_name;
  if (className === undefined || className === null) return null;
  if (typeof className !== 'string') throw new BundleError(`${file}: _class_name must be a string`);
  if (className in UNSUPPORTED) throw new BundleError(`${file}: _class_name ${className}: ${UNSUPPORTED[className]}`);
  const name = SCHEDULER_CLASSES[className];
  if (!name) {
    throw new BundleError(
      `${file}: _class_name ${quoteInput(className)} is not a scheduler stepframe implements; set it to one of ${Object.keys(SCHEDULER_CLASSES).join(', ')}`,
    );
  }
  if (name === 'dpmpp_2m') {
    // stepframe implements DPM-Solver++ of order 2 only (diffusers' defaults).
    const algorithm = raw.algorithm_type ?? 'dpmsolver++';
    const order = raw.solver_order ?? 2;
    if (algorithm !== 'dpmsolver++' || order !== 2) {
      throw new BundleError(`${file}: DPMSolverMultistepScheduler with algorithm_type ${String(algorithm)} and solver_order ${String(order)} is not implemented; stepframe has dpmsolver++ of order 2`);
    }
  }
  return name;
}
