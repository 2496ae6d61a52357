import { InvalidArgumentError } from '../errors.js';
import { DdimScheduler } from './ddim.js';
import { DdpmScheduler } from './ddpm.js';
import { DpmSolverPlusPlus2MScheduler } from './dpmSolverPlusPlus2M.js';
import { EulerScheduler } from './euler.js';
import { EulerAncestralScheduler } from './eulerAncestral.js';
import { buildNoiseTables } from './noiseTables.js';
import { LcmScheduler } from './lcm.js';
import { LmsScheduler } from './lms.js';
import { PndmScheduler } from './pndm.js';
import { type SchedulerConfig, parseSchedulerConfig } from './schedulerConfig.js';
import type { Scheduler, SchedulerName } from './schedulerRun.js';
import { quoteInput } from '../quoteInput.js';

export type { RunOptions, Scheduler, SchedulerName, SchedulerRun, SchedulerStepResult } from './schedulerRun.js';
export { parseSchedulerConfig, type SchedulerConfig } from './schedulerConfig.js';

export const SCHEDULER_NAMES: readonly SchedulerName[] = ['ddpm', 'ddim', 'pndm', 'lms', 'euler', 'euler_ancestral', 'dpmpp_2m', 'lcm'];

export function isSchedulerName(name: string): name is SchedulerName {
  return (SCHEDULER_NAMES as readonly string[]).includes(name);
}

/**
 * A scheduler over diffusers' `scheduler_config.json` (raw JSON or parsed). The noise tables are
 * built here, once; `setTimesteps` returns a fresh per-sequence run each time. `options.eta` is
 * DDIM's default η for runs that name none (a run's own options take precedence).
 */
export function createScheduler(name: string, config: SchedulerConfig | Record<string, unknown>, options: { eta?: number } = {}): Scheduler {
  const parsed = 'numTrainTimesteps' in config ? (config as SchedulerConfig) : parseSchedulerConfig(config);
  const tables = buildNoiseTables(parsed);
  switch (name) {
    case 'ddpm':
      return new DdpmScheduler(parsed, tables);
    case 'ddim': {
      const eta = options.eta ?? 0;
      if (!Number.isFinite(eta) || eta < 0 || eta > 1) throw new InvalidArgumentError('eta', `must be in [0, 1], got ${eta}`);
      return new DdimScheduler(parsed, tables, eta);
    }
    case 'pndm':
      return new PndmScheduler(parsed, tables);
    case 'lms':
      return new LmsScheduler(parsed, tables);
    case 'euler':
      return new EulerScheduler(parsed, tables);
    case 'euler_ancestral':
      return new EulerAncestralScheduler(parsed, tables);
    case 'dpmpp_2m':
      return new DpmSolverPlusPlus2MScheduler(parsed, tables);
    case 'lcm':
      return new LcmScheduler(parsed, tables);
    default:
      throw new InvalidArgumentError('scheduler', `unknown scheduler ${quoteInput(name)}; expected one of ${SCHEDULER_NAMES.join(', ')}`);
  }
}
