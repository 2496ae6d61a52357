import { HealthImplementation } from 'grpc-health-check';

import type { Engine } from '../pipeline/engine.js';
import { DrainingError } from './serverErrors.js';

export const SERVICE_NAME = 'stepframe.v1.SequenceService';

/**
 * The server's state: loading (NOT_SERVING, no engine), serving, draining (NOT_SERVING, new calls
 * refused, in-flight calls tracked until they finish).
 */
export class Lifecycle {
  readonly health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING' });
  private engineRef: Engine | null = null;
  private drainingFlag = false;
  private servingFlag = false;
  private readonly inFlight = new Set<Promise<unknown>>();

  get draining(): boolean {
    return this.drainingFlag;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** What health reports now: SERVING only when loaded, not draining and no executor is being replaced. */
  get serving(): boolean {
    return this.servingFlag;
  }

  serve(engine: Engine): void {
    this.engineRef = engine;
    // While a lost executor is replaced, load balancers should send new work elsewhere.
    engine.onHealthChange((healthy) => {
      if (!this.drainingFlag) this.setHealth(healthy ? 'SERVING' : 'NOT_SERVING');
    });
    this.setHealth(engine.healthy ? 'SERVING' : 'NOT_SERVING');
  }

  /** The engine for a new call; refuses while loading or draining. */
  engine(): Engine {
    if (this.drainingFlag || !this.engineRef) throw new DrainingError();
    return this.engineRef;
  }

  track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work)).catch(() => undefined);
    return work;
  }

  /** Health goes NOT_SERVING and new calls are refused; resolves true when in-flight work finished in time. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.drainingFlag = true;
    this.setHealth('NOT_SERVING');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const finished = Promise.allSettled([...this.inFlight]).then(() => true as const);
    const result = await Promise.race([finished, timedOut]);
    clearTimeout(timer);
    return result;
  }

  private setHealth(status: 'SERVING' | 'NOT_SERVING'): void {
    this.servingFlag = status === 'SERVING';
    this.health.setStatus('', status);
    this.health.setStatus(SERVICE_NAME, status);
  }
}
