import { abortable } from '../abortable.js';
import type { WeightFile } from '../bundle/loadBundle.js';
import { BundleError } from '../errors.js';
import { formatBytes } from './memoryBudget.js';
import { type ResidencyLimits, type ResidentBundle, planLoad } from './residencyPlan.js';

export type BundleState = 'loaded' | 'loading' | 'not_loaded';

/** A load or unload, for metrics and the log. */
export interface BundleEvent {
  kind: 'load' | 'unload';
  model: string;
  /** How long a load took (weights verified, sessions created in every executor). */
  seconds?: number;
}

/** What the catalog needs from the engine: make and drop a bundle's runtime, and weigh its files. */
export interface CatalogHooks<R> {
  load(dir: string): Promise<R>;
  unload(runtime: R): Promise<void>;
  /** Copies of a file's weights the executors hold: 1 where they share one, else one per executor. */
  copies(file: WeightFile): number;
  onEvent?(event: BundleEvent): void;
}

/** A bundle held for one sequence: it is not unloaded until `release`. */
export interface BundleHold<R> {
  runtime: R;
  release(): void;
}

interface Entry<R> {
  name: string;
  dir: string;
  files: readonly WeightFile[];
  runtime: R | null;
  loading: Promise<R> | null;
  users: number;
  lastUsed: number;
}

/**
 * Which bundles are loaded, within a memory budget and a count (Triton's explicit model control,
 * Ollama's OLLAMA_MAX_LOADED_MODELS). A bundle loads on its first request when it is not loaded;
 * the least recently used idle bundle is unloaded to make room; a bundle held by a sequence is
 * never unloaded. Loads and unloads run one at a time. With no limits everything stays loaded.
 */
export class BundleCatalog<R> {
  private readonly entries = new Map<string, Entry<R>>();
  /** Every bundle's weight files by pool key; bundles sharing a file share its entry. */
  private readonly files = new Map<string, WeightFile>();
  private readonly releaseWaiters: (() => void)[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private tick = 0;
  private waiting = 0;

  constructor(
    private readonly hooks: CatalogHooks<R>,
    readonly limits: ResidencyLimits,
  ) {}

  /** Registers a bundle, not loaded yet. */
  add(name: string, dir: string, files: readonly WeightFile[]): void {
    if (this.entries.has(name)) throw new BundleError(`two bundles are named ${name} (in ${this.entries.get(name)!.dir} and ${dir})`);
    this.entries.set(name, { name, dir, files, runtime: null, loading: null, users: 0, lastUsed: 0 });
    for (const file of files) this.files.set(file.key, file);
  }

  /** Loads a bundle now, unloading idle ones if it does not fit (start-up: every bundle is checked by loading it once). */
  async preload(name: string): Promise<void> {
    const entry = this.entry(name);
    entry.users++;
    try {
      await this.ensureLoaded(entry);
    } finally {
      this.letGo(entry);
    }
  }

  /**
   * The bundle's runtime, loading it first if needed; waits for room and for the load within
   * `signal`. The bundle stays loaded until the hold is released.
   */
  async acquire(name: string, signal?: AbortSignal): Promise<BundleHold<R>> {
    const entry = this.entry(name);
    entry.users++;
    let runtime = entry.runtime;
    if (!runtime) {
      this.waiting++;
      try {
        runtime = await abortable(this.ensureLoaded(entry), signal);
      } catch (error) {
        this.letGo(entry);
        throw error;
      } finally {
        this.waiting--;
      }
    }
    let released = false;
    return {
      runtime,
      release: () => {
        if (released) return;
        released = true;
        this.letGo(entry);
      },
    };
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  state(name: string): BundleState {
    const entry = this.entry(name);
    return entry.runtime ? 'loaded' : entry.loading ? 'loading' : 'not_loaded';
  }

  /** Runtimes loaded now. */
  loaded(): R[] {
    return [...this.entries.values()].flatMap((e) => (e.runtime ? [e.runtime] : []));
  }

  /** Sequences waiting for their bundle to load (they count as queued). */
  get waitingForLoad(): number {
    return this.waiting;
  }

  /** Bytes of weights the loaded bundles hold, as the budget counts them. */
  loadedBytes(): number {
    return this.cost(new Set(this.resident().flatMap((b) => b.models)));
  }

  private entry(name: string): Entry<R> {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`no bundle ${name} in the catalog`);
    return entry;
  }

  private ensureLoaded(entry: Entry<R>): Promise<R> {
    if (entry.runtime) return Promise.resolve(entry.runtime);
    if (!entry.loading) {
      const loading = this.serially(() => this.loadNow(entry));
      entry.loading = loading;
      const done = () => entry.loading === loading && (entry.loading = null);
      loading.then(done, done);
    }
    return entry.loading;
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async loadNow(entry: Entry<R>): Promise<R> {
    for (;;) {
      const plan = planLoad({ name: entry.name, models: entry.files.map((f) => f.key) }, this.resident(), this.limits, (keys) => this.cost(keys));
      if (plan.kind === 'never') {
        const alone = this.cost(new Set(entry.files.map((f) => f.key)));
        throw new BundleError(`bundle ${entry.name} needs ${formatBytes(alone)} of weights as its executors hold them, more than --memory-budget ${formatBytes(this.limits.budgetBytes!)}`);
      }
      if (plan.kind === 'load') {
        await this.unloadNow(plan.evict);
        break;
      }
      // Every loaded bundle is in use: wait for a sequence to finish, unless everyone waiting for this one gave up.
      if (entry.users === 0) throw new BundleError(`the load of bundle ${entry.name} was abandoned: every request for it ended while it waited for room`);
      await new Promise<void>((resolve) => this.releaseWaiters.push(resolve));
    }
    const started = performance.now();
    const runtime = await this.hooks.load(entry.dir);
    entry.runtime = runtime;
    entry.lastUsed = ++this.tick;
    this.hooks.onEvent?.({ kind: 'load', model: entry.name, seconds: (performance.now() - started) / 1000 });
    return runtime;
  }

  /** Marks every victim unloaded before the first await, so no request can take one of them meanwhile. */
  private async unloadNow(names: readonly string[]): Promise<void> {
    const victims = names.map((name) => {
      const entry = this.entry(name);
      if (entry.users > 0 || !entry.runtime) throw new Error(`bundle ${name} is in use or not loaded; the plan must pick idle loaded bundles`);
      const runtime = entry.runtime;
      entry.runtime = null;
      return { name, runtime };
    });
    for (const { name, runtime } of victims) {
      await this.hooks.unload(runtime);
      this.hooks.onEvent?.({ kind: 'unload', model: name });
    }
  }

  private letGo(entry: Entry<R>): void {
    entry.users--;
    entry.lastUsed = ++this.tick;
    if (entry.users === 0) for (const wake of this.releaseWaiters.splice(0)) wake();
  }

  private resident(): ResidentBundle[] {
    return [...this.entries.values()].filter((e) => e.runtime).map((e) => ({ name: e.name, users: e.users, lastUsed: e.lastUsed, models: e.files.map((f) => f.key) }));
  }

  private cost(keys: ReadonlySet<string>): number {
    let bytes = 0;
    for (const key of keys) {
      const file = this.files.get(key);
      if (file) bytes += file.bytes * this.hooks.copies(file);
    }
    return bytes;
  }
}
