import type { OnnxModel } from '../bundle/onnxModel.js';
import { CancelledError, EngineError, ModelFailureError } from '../errors.js';
import type { Lease } from '../execution/executorPool.js';
import { type Feeds, type Outputs, concatFeeds, splitOutputs } from './feeds.js';
import { type Queued, nextBatch } from './nextBatch.js';

export interface BatchLimits {
  /** Most rows in one model call. */
  maxBatch: number;
  /** Longest a partial batch waits for the sequences that have not yet queued their rows. */
  maxQueueDelayMs: number;
}

/** What a finished batch reports, for metrics and for linking request spans to the batch span. */
export interface BatchReport {
  model: string;
  rows: number;
  requests: number;
  /** The executor that ran the call. */
  executor: number;
  startedAt: number;
  durationMs: number;
  /** The opaque `trace` values of the requests served. */
  traces: unknown[];
  error?: unknown;
}

export type BatchObserver = (report: BatchReport) => void;

interface Entry extends Queued {
  feeds: Feeds;
  queuedAt: number;
  trace: unknown;
  resolve: (outputs: Outputs) => void;
  reject: (error: unknown) => void;
}

export interface BatchRequest {
  feeds: Feeds;
  rows: number;
  signal?: AbortSignal;
  groupKey?: string | number;
  /** Passed through to the observer (a span context, for example). */
  trace?: unknown;
}

/**
 * One loop per model that owns its queue. Callers enqueue rows and await their slice of the
 * output; the loop packs queued rows into calls. A batch is ready when it is full, when every
 * participating sequence not already in a running call has queued its rows, or when the oldest
 * request has waited `maxQueueDelayMs`. A ready loop asks the executor pool for a lease and builds
 * the batch only when one is granted, so rows keep joining while every executor is busy. It may
 * have as many calls in flight as there are executors; when other executors are idle too, the
 * queued rows are split between them, since each is a separate core or device.
 */
export class BatchedModel {
  private queue: Entry[] = [];
  private waitingForLease = false;
  private timer: NodeJS.Timeout | null = null;
  private participants = 0;
  /** Entries inside calls now running. */
  private inFlight = 0;

  constructor(
    private readonly model: OnnxModel,
    private readonly outputNames: readonly string[],
    private readonly limits: BatchLimits,
    private readonly observer: BatchObserver = () => undefined,
    private readonly scalarInputs: ReadonlySet<string> = new Set(),
  ) {}

  /** Rows waiting for a model call. */
  get queuedRows(): number {
    return this.queue.reduce((sum, e) => sum + e.rows, 0);
  }

  /**
   * A sequence that will call this model step after step joins, so the loop knows how many
   * requests to wait for before running a partial batch; it must leave when it stops.
   */
  join(): () => void {
    this.participants++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.participants--;
      this.schedule();
    };
  }

  run(request: BatchRequest): Promise<Outputs> {
    if (request.signal?.aborted) return Promise.reject(new CancelledError());
    return new Promise<Outputs>((resolve, reject) => {
      const signal = request.signal;
      // A cancelled request leaves the queue at once, freeing its slot before the next batch is built.
      const onAbort = () => this.drop(entry);
      const settle = () => signal?.removeEventListener('abort', onAbort);
      const entry: Entry = {
        ...request,
        queuedAt: performance.now(),
        trace: request.trace,
        resolve: (outputs) => (settle(), resolve(outputs)),
        reject: (error) => (settle(), reject(error)),
      };
      this.queue.push(entry);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.schedule();
    });
  }

  private drop(entry: Entry): void {
    const index = this.queue.indexOf(entry);
    if (index < 0) return;
    this.queue.splice(index, 1);
    entry.reject(new CancelledError());
    this.schedule();
  }

  private ready(): boolean {
    const waited = performance.now() - this.queue[0].queuedAt;
    return this.queuedRows >= this.limits.maxBatch || this.queue.length >= this.participants - this.inFlight || waited >= this.limits.maxQueueDelayMs;
  }

  private schedule(): void {
    if (this.waitingForLease || this.queue.length === 0) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.ready()) {
      this.waitingForLease = true;
      this.model.executors.lease().then(
        (lease) => {
          this.waitingForLease = false;
          this.dispatch(lease);
        },
        (error: unknown) => {
          // The pool is shut down: nothing queued here can run any more.
          this.waitingForLease = false;
          for (const entry of this.queue.splice(0)) entry.reject(new ModelFailureError(`${this.model.file}: ${(error as Error).message}`, { cause: error }));
        },
      );
    } else {
      const waited = performance.now() - this.queue[0].queuedAt;
      this.timer = setTimeout(() => {
        this.timer = null;
        this.schedule();
      }, this.limits.maxQueueDelayMs - waited);
    }
  }

  private dispatch(lease: Lease): void {
    // Split the queued requests evenly between this executor and the others that are idle now
    // (by requests: splitting by rows would strand a two-row request on its own).
    const share = Math.ceil(this.queue.length / (1 + this.model.executors.idleCount));
    const { batch, dropped, rest } = nextBatch(this.queue, this.limits.maxBatch, share);
    this.queue = rest;
    for (const entry of dropped) entry.reject(new CancelledError());
    if (batch.length === 0) {
      lease.release();
      return this.schedule();
    }
    this.inFlight += batch.length;
    void this.runBatch(lease, batch);
    // Rows left over may take another idle executor at once.
    this.schedule();
  }

  private async runBatch(lease: Lease, batch: Entry[]): Promise<void> {
    const startedAt = performance.now();
    const rows = batch.map((e) => e.rows);
    let error: unknown;
    try {
      const feeds = concatFeeds(batch.map((e) => e.feeds), this.scalarInputs);
      const results = await lease.executor.run(this.model.id, feeds, this.outputNames);
      const slices = splitOutputs(results, this.outputNames, rows);
      batch.forEach((entry, i) => entry.resolve(slices[i]));
    } catch (caught) {
      error = caught instanceof EngineError ? caught : new ModelFailureError(`batched call to ${this.model.file} failed`, { cause: caught });
      for (const entry of batch) entry.reject(error);
    } finally {
      lease.release();
      this.inFlight -= batch.length;
    }
    this.observer({
      model: this.model.file,
      rows: rows.reduce((a, b) => a + b, 0),
      requests: batch.length,
      executor: lease.executor.index,
      startedAt,
      durationMs: performance.now() - startedAt,
      traces: batch.map((e) => e.trace),
      error,
    });
    this.schedule();
  }
}
