import { CancelledError, OverloadedError } from './errors.js';

export interface AdmissionLimits {
  /** Sequences generating at once (their denoising steps share UNet batches). */
  maxActiveSequences: number;
  /** Sequences waiting for a slot; beyond this new work is refused. */
  maxQueuedSequences: number;
}

/** Limits concurrent sequences; waiting ones are admitted oldest first, and refused past the queue limit. */
export class AdmissionGate {
  private active = 0;
  /** Admitted sequences paused for a slow reader: they hold no slot, but count against the queue limit. */
  private paused = 0;
  private readonly waiting: { admit: () => void; signal?: AbortSignal }[] = [];

  /** `queuedElsewhere`: sequences waiting before the gate (for their bundle to load), counted against the queue limit too. */
  constructor(
    private readonly limits: AdmissionLimits,
    private readonly queuedElsewhere: () => number = () => 0,
  ) {}

  /** Throws OverloadedError when one more waiting sequence would pass maxQueuedSequences. */
  checkQueueRoom(): void {
    const elsewhere = this.queuedElsewhere();
    if (this.waiting.length + this.paused + elsewhere < this.limits.maxQueuedSequences) return;
    throw new OverloadedError(
      `${this.active} sequences are generating, ${this.waiting.length} are queued, ${this.paused} wait for slow readers and ${elsewhere} for their bundle to load (limits ${this.limits.maxActiveSequences} and ${this.limits.maxQueuedSequences}); retry later`,
    );
  }

  get activeCount(): number {
    return this.active;
  }

  get queuedCount(): number {
    return this.waiting.length;
  }

  get pausedCount(): number {
    return this.paused;
  }

  /**
   * Gives the slot back for a sequence whose reader lags; `resume` queues for one again. Paused
   * sequences count against maxQueuedSequences, so slow readers cannot pile up state without bound.
   */
  pause(release: () => void): { resume: (signal?: AbortSignal) => Promise<() => void>; leave: () => void } {
    release();
    this.paused++;
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      this.paused--;
    };
    return {
      resume: (signal) => {
        leave();
        return this.acquire(signal, { resume: true });
      },
      leave,
    };
  }

  /**
   * Resolves with a release function once admitted; throws OverloadedError at once when full.
   * `resume` is for a sequence that was admitted before and paused for a slow reader: it waits at
   * the head of the queue and is never refused, since its client already holds an accepted stream.
   */
  async acquire(signal?: AbortSignal, options: { resume?: boolean } = {}): Promise<() => void> {
    if (signal?.aborted) throw new CancelledError();
    if (this.active < this.limits.maxActiveSequences && this.waiting.length === 0) {
      this.active++;
      return this.releaser();
    }
    if (!options.resume) this.checkQueueRoom();
    await new Promise<void>((resolve, reject) => {
      const entry = {
        signal,
        admit: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const index = this.waiting.indexOf(entry);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(new CancelledError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (options.resume) this.waiting.unshift(entry);
      else this.waiting.push(entry);
    });
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next.admit(); // the slot passes straight to the oldest waiter
      else this.active--;
    };
  }
}
