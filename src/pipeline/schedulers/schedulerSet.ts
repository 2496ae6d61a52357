import { type Scheduler, type SchedulerConfig, createScheduler } from './index.js';

/**
 * One bundle's schedulers (and their noise tables), built once per name. Keyed by the name alone,
 * which createScheduler refuses unless it is one of SCHEDULER_NAMES, so it holds at most that many;
 * per-request values such as η go to the run, not into the key. It outlives the bundle's sessions:
 * a request's step count is checked here before its bundle is loaded.
 */
export class SchedulerSet {
  private readonly schedulers = new Map<string, Scheduler>();

  constructor(private readonly config: SchedulerConfig) {}

  get(name: string): Scheduler {
    let scheduler = this.schedulers.get(name);
    if (!scheduler) {
      scheduler = createScheduler(name, this.config);
      this.schedulers.set(name, scheduler);
    }
    return scheduler;
  }
}
