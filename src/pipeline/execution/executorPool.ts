import { availableParallelism } from 'node:os';

import type { ExecutionSettings } from './executionSettings.js';
import type { Executor } from './executor.js';
import { MainThreadExecutor } from './mainThreadExecutor.js';
import type { LoadedModelInfo, ProviderChoice, SessionTuning, WireFeed, WireOutputs } from './protocol.js';
import { WorkerExecutor } from './workerExecutor.js';

/** The right to run one model call on one executor; give it back with `release`. */
export interface Lease {
  readonly executor: Executor;
  release(): void;
}

export interface ExecutorStats {
  executors: number;
  busy: number;
  /** Executors lost and replaced since start. */
  restarts: number;
}

/** Providers that place sessions on a GPU: with auto sizing, one executor per listed device. */
const DEVICE_PROVIDERS = new Set(['cuda', 'tensorrt']);
const MAX_RESTART_DELAY_MS = 30_000;
/** Replacement attempts for one lost executor (0.5 s, 1 s, … 16 s apart: about 30 s) before the pool gives it up. */
const MAX_REPLACE_ATTEMPTS = 6;

/** How the pool makes executors and paces replacements; tests inject failing executors and short delays. */
export interface PoolOptions {
  spawn?: (index: number, deviceId: number | undefined, mode: ExecutionSettings['mode']) => Executor;
  /** The first retry's delay; each later one doubles, up to 30 s. */
  retryDelayMs?: number;
}

/** How one model's sessions are created, beyond the pool's thread settings. */
export interface ModelLoadOptions {
  /** See SessionTuning.weightsInPlace. */
  weightsInPlace: boolean;
}

/**
 * Every executor of the process, each holding every loaded model, and the leases that hand them out.
 * Batching loops ask for a lease when a batch is ready and build the batch when it is granted, so
 * rows keep accumulating while every executor is busy. Leases are granted oldest first. A lost
 * executor is replaced with all its models; health reads false until the replacement is ready.
 */
export class ExecutorPool {
  private readonly executors: Executor[] = [];
  private readonly idle: Executor[] = [];
  private readonly waiters: { grant: (lease: Lease) => void; fail: (error: Error) => void }[] = [];
  /** The provider the first model loaded on: a replacement executor must come up on the same one. */
  private provider: string | null = null;
  /** Set when every executor is lost and none could be replaced: every lease fails with it. */
  private failed: Error | null = null;
  private readonly models: { id: number; file: string; options: ModelLoadOptions }[] = [];
  private nextModelId = 1;
  private readonly unavailable = new Set<string>();
  private readonly healthListeners = new Set<(healthy: boolean) => void>();
  /** Loads waiting for a replacement executor while none is left. */
  private readonly executorWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private loading: Promise<unknown> = Promise.resolve();
  private targetSize: number | null = null;
  private replacing = 0;
  private restartCount = 0;
  private disposed = false;

  constructor(
    private readonly settings: ExecutionSettings,
    private readonly options: PoolOptions = {},
  ) {}

  /** Loads a model into every executor; the first load also decides how many executors there are. */
  load(file: string, options: ModelLoadOptions = { weightsInPlace: false }): Promise<{ id: number; info: LoadedModelInfo }> {
    const result = this.loading.then(() => this.loadEverywhere(file, options));
    this.loading = result.catch(() => undefined);
    return result;
  }

  /**
   * Drops a model from every executor, and from what a replacement executor loads. The caller
   * guarantees no call to it is queued or running (only idle bundles are unloaded).
   */
  unload(modelId: number): Promise<void> {
    const result = this.loading.then(async () => {
      const at = this.models.findIndex((m) => m.id === modelId);
      if (at < 0) return;
      this.models.splice(at, 1);
      await Promise.allSettled(this.executors.map((e) => e.release(modelId)));
    });
    this.loading = result.catch(() => undefined);
    return result;
  }

  /** Executors there are, or will be once the first model loads on `provider`. */
  plannedSize(provider: string): number {
    return this.targetSize ?? this.decideSize(provider);
  }

  /**
   * Resolves when an executor is free; the oldest waiter is served first. Rejects with `signal`'s
   * reason when it fires first, and at once when the pool is shut down or has lost every executor.
   */
  lease(signal?: AbortSignal): Promise<Lease> {
    if (this.disposed) return Promise.reject(new Error('the executor pool is shut down'));
    if (this.failed) return Promise.reject(this.failed);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((grant, fail) => {
      const onAbort = () => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        fail(signal!.reason);
      };
      const waiter = {
        grant: (lease: Lease) => (signal?.removeEventListener('abort', onAbort), grant(lease)),
        fail: (error: Error) => (signal?.removeEventListener('abort', onAbort), fail(error)),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.grant();
    });
  }

  /** One model call on the next free executor. */
  async run(modelId: number, feeds: Record<string, WireFeed>, outputNames: readonly string[]): Promise<WireOutputs> {
    const lease = await this.lease();
    try {
      return await lease.executor.run(modelId, feeds, outputNames);
    } finally {
      lease.release();
    }
  }

  /** Executors free right now and not promised to a waiter. */
  get idleCount(): number {
    return Math.max(0, this.idle.length - this.waiters.length);
  }

  /** The provider the models run on, once the first one has loaded. */
  get providerInUse(): string | null {
    return this.provider;
  }

  get size(): number {
    return this.executors.length;
  }

  /** False while a lost executor is being replaced, and for good once every executor is lost. */
  get healthy(): boolean {
    return this.replacing === 0 && !this.failed;
  }

  onHealthChange(listener: (healthy: boolean) => void): () => void {
    this.healthListeners.add(listener);
    return () => this.healthListeners.delete(listener);
  }

  stats(): ExecutorStats {
    return { executors: this.executors.length, busy: this.executors.length - this.idle.length, restarts: this.restartCount };
  }

  /** Test-only fault hook: executor `index` ends itself during its next model call. */
  async exitOnNextRun(index: number): Promise<void> {
    const executor = this.executors.find((e) => e.index === index);
    if (!executor) throw new Error(`no executor ${index}`);
    await executor.exitOnNextRun();
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    // A load waiting for a replacement would wait for ever: replacements stop once disposed.
    for (const waiter of this.executorWaiters.splice(0)) waiter.reject(new Error('the executor pool is shut down'));
    // A load still queued behind a failed one would otherwise start on a thread being ended.
    await this.loading;
    for (const waiter of this.waiters.splice(0)) waiter.fail(new Error('the executor pool is shut down'));
    const all = this.executors.splice(0);
    this.idle.length = 0;
    await Promise.allSettled(all.map((e) => e.dispose()));
  }

  private async loadEverywhere(file: string, options: ModelLoadOptions): Promise<{ id: number; info: LoadedModelInfo }> {
    if (this.disposed) throw new Error('the executor pool is shut down');
    // Ids are never reused: a model unloaded and loaded again is a new model to every executor.
    const id = this.nextModelId++;
    if (this.executors.length === 0) {
      // The first load makes the first executor. Later, no executor means every one was lost and is
      // being replaced (a bundle loading on request meanwhile): wait for one rather than add another.
      if (this.targetSize === null) this.add(this.spawn(0));
      else await this.anExecutor();
    }
    const tuning = this.tuning(options);
    const info = await this.executors[0].load(id, file, this.providersFor(this.executors[0]), tuning);
    this.noteUnavailable(info, file);
    this.provider ??= info.provider;
    const others = this.executors.slice(1);
    this.models.push({ id, file, options });
    if (this.targetSize === null) {
      this.targetSize = this.decideSize(info.provider);
      const added: Executor[] = [];
      for (let index = 1; index < this.targetSize; index++) added.push(this.spawn(index));
      // New executors load every model so far, this one included; they join the pool once loaded.
      await Promise.all(added.map((e) => this.loadAll(e)));
      added.forEach((e) => this.add(e));
    } else {
      await Promise.all(others.map((e) => e.load(id, file, this.providersFor(e), tuning)));
    }
    return { id, info };
  }

  private decideSize(provider: string): number {
    if (this.settings.mode === 'main-thread') return 1;
    if (this.settings.executors > 0) return this.settings.executors;
    if (DEVICE_PROVIDERS.has(provider)) return Math.max(1, this.settings.cudaDeviceIds.length);
    return this.settings.largeModels ? 1 : availableParallelism();
  }

  private spawn(index: number): Executor {
    const ids = this.settings.cudaDeviceIds;
    const deviceId = ids.length > 0 ? ids[index % ids.length] : undefined;
    if (this.options.spawn) return this.options.spawn(index, deviceId, this.settings.mode);
    return this.settings.mode === 'main-thread' ? new MainThreadExecutor(index, deviceId) : new WorkerExecutor(index, deviceId);
  }

  /** Resolves once an executor is in the pool; rejects when the pool has failed or is shut down. */
  private anExecutor(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.disposed) return Promise.reject(new Error('the executor pool is shut down'));
    if (this.executors.length > 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.executorWaiters.push({ resolve, reject }));
  }

  private add(executor: Executor): void {
    for (const waiter of this.executorWaiters.splice(0)) waiter.resolve();
    this.executors.push(executor);
    this.idle.push(executor);
    void executor.lost.then((reason) => this.onLost(executor, reason));
    this.grant();
  }

  /** Loads every model so far into `executor`; refuses one that lands on another provider than the pool's. */
  private async loadAll(executor: Executor): Promise<void> {
    // Until nothing new arrived: bundles may load (or unload) while a replacement comes up.
    const loaded = new Set<(typeof this.models)[number]>();
    for (let pending = this.models; pending.length > 0; pending = this.models.filter((m) => !loaded.has(m))) {
      for (const model of pending) {
        const info = await executor.load(model.id, model.file, this.providersFor(executor), this.tuning(model.options));
        loaded.add(model);
        if (this.provider !== null && info.provider !== this.provider) {
          // A CPU straggler among GPU executors would take equal shares of batches at a fraction of the speed,
          // and stepframe_models{provider} would go on saying the first provider.
          throw new Error(`executor ${executor.index} came up on ${info.provider}, not ${this.provider} like the others (${model.file})`);
        }
      }
    }
    // A model unloaded meanwhile (its bundle made room for another) must not stay in the newcomer.
    for (const model of loaded) if (!this.models.includes(model)) await executor.release(model.id);
  }

  private providersFor(executor: Executor): ProviderChoice[] {
    return this.settings.executionProviders
      .filter((name) => !this.unavailable.has(name))
      .map((name) => (DEVICE_PROVIDERS.has(name) && executor.deviceId !== undefined ? { name, deviceId: executor.deviceId } : { name }));
  }

  private tuning(options: ModelLoadOptions): SessionTuning {
    return { intraOpNumThreads: this.settings.intraOpNumThreads, interOpNumThreads: this.settings.interOpNumThreads, weightsInPlace: options.weightsInPlace };
  }

  private noteUnavailable(info: LoadedModelInfo, file: string): void {
    for (const { provider, error } of info.unavailable) {
      if (this.unavailable.has(provider)) continue;
      this.unavailable.add(provider);
      (this.settings.warn ?? this.settings.log)(`execution provider ${provider} is unavailable; running on ${info.provider} instead`, { provider, using: info.provider, file, error });
    }
  }

  private grant(): void {
    while (this.idle.length > 0 && this.waiters.length > 0) {
      // The executor freed last goes first: its caches still hold the weights it just ran.
      const executor = this.idle.pop()!;
      const waiter = this.waiters.shift()!;
      let released = false;
      waiter.grant({
        executor,
        release: () => {
          if (released) return;
          released = true;
          if (this.executors.includes(executor)) {
            this.idle.push(executor);
            this.grant();
          }
        },
      });
    }
  }

  private onLost(executor: Executor, reason: string): void {
    if (this.disposed) return;
    const at = this.executors.indexOf(executor);
    if (at < 0) return;
    this.executors.splice(at, 1);
    const idleAt = this.idle.indexOf(executor);
    if (idleAt >= 0) this.idle.splice(idleAt, 1);
    this.restartCount++;
    this.replacing++;
    (this.settings.warn ?? this.settings.log)('executor lost; replacing it with its models', { executor: executor.index, reason });
    if (this.replacing === 1) this.notifyHealth(false);
    void this.replace(executor.index, 0);
  }

  private async replace(index: number, attempt: number): Promise<void> {
    if (this.disposed) return;
    const executor = this.spawn(index);
    try {
      await this.loadAll(executor);
    } catch (error) {
      await executor.dispose();
      const warn = this.settings.warn ?? this.settings.log;
      if (attempt + 1 >= MAX_REPLACE_ATTEMPTS) return this.giveUp(index, error as Error);
      const delay = Math.min(MAX_RESTART_DELAY_MS, (this.options.retryDelayMs ?? 500) * 2 ** attempt);
      warn('replacing a lost executor failed; trying again', { executor: index, attempt: attempt + 1, delayMs: delay, error: (error as Error).message });
      setTimeout(() => void this.replace(index, attempt + 1), delay).unref();
      return;
    }
    if (this.disposed) return void executor.dispose();
    this.add(executor);
    this.settings.log('executor replaced', { executor: index, models: this.models.length });
    this.replacing--;
    if (this.replacing === 0) this.notifyHealth(true);
  }

  /** Stops replacing executor `index`; with no executor left, every waiting and later lease fails instead of hanging. */
  private giveUp(index: number, error: Error): void {
    this.replacing--;
    if (this.executors.length > 0) {
      (this.settings.warn ?? this.settings.log)('gave up replacing a lost executor; serving on the others', { executor: index, executors: this.executors.length, error: error.message });
      if (this.replacing === 0) this.notifyHealth(true);
      return;
    }
    this.failed = new Error(`every executor was lost and none could be replaced after ${MAX_REPLACE_ATTEMPTS} attempts: ${error.message}`);
    for (const waiter of this.executorWaiters.splice(0)) waiter.reject(this.failed);
    (this.settings.warn ?? this.settings.log)('every executor is lost; model calls fail until the process is restarted', { error: error.message });
    for (const waiter of this.waiters.splice(0)) waiter.fail(this.failed);
  }

  private notifyHealth(healthy: boolean): void {
    for (const listener of this.healthListeners) listener(healthy);
  }
}

