import type { BatchLimits, BatchObserver, BatchedModel } from './batching/batchedModel.js';
import { BundleLoader, bundleWeightFiles, declaredDefaultModel, findBundleDirs } from './bundle/loadBundle.js';
import type { BundleDefaults } from './bundle/manifest.js';
import type { OnnxModel } from './bundle/onnxModel.js';
import type { ImagePreprocessConfig } from './bundle/preprocessorConfig.js';
import { SessionPool } from './bundle/sessionPool.js';
import { AdmissionGate, type AdmissionLimits } from './admissionGate.js';
import { abortable } from './abortable.js';
import { BundleRuntime } from './bundleRuntime.js';
import { BundleError, InvalidArgumentError } from './errors.js';
import type { ExecutionSettings } from './execution/executionSettings.js';
import type { ExecutorStats } from './execution/executorPool.js';
import { largestUnetBytes, layoutFor } from './execution/layout.js';
import { type BundleEvent, type BundleState, BundleCatalog } from './residency/bundleCatalog.js';
import { formatBytes } from './residency/memoryBudget.js';
import type { ResidencyLimits } from './residency/residencyPlan.js';
import { SCHEDULER_NAMES } from './schedulers/index.js';
import { SchedulerSet } from './schedulers/schedulerSet.js';
import { runSequence } from './sequenceLoop.js';
import { checkFrameStrength } from './warmStart.js';
import type { SequenceHooks, SequenceRequest, StepImage } from './sequenceRequest.js';
import { SeededRandom } from './random.js';
import { quoteInput } from './quoteInput.js';

export interface EngineOptions {
  /** Folder whose subfolders are bundles (stepframe.json or an Optimum SD export). */
  modelsDir: string;
  /** Used when a request names no model; defaults to the one `modelsDir/default-model.json` names, else the first bundle found. */
  defaultModel?: string;
  /** Where and how model calls run (executors, providers, threads). */
  session: ExecutionSettings;
  batch: BatchLimits;
  admission: AdmissionLimits;
  observer?: BatchObserver;
  /** Check components against the sha256 in their manifests (default true). */
  verifyWeights?: boolean;
  /** How many bundles, and how many bytes of weights, may be loaded at once (default: no limits, everything stays loaded). */
  residency?: ResidencyLimits;
  /** Bundle loads and unloads, for metrics. */
  onBundleEvent?: (event: BundleEvent) => void;
}

/** What ListModels reports for one bundle. */
export interface ModelInfo {
  name: string;
  fuserKind: string;
  width: number;
  height: number;
  imageGuidance: boolean;
  defaults: BundleDefaults;
  schedulers: readonly string[];
  provider: string;
  isDefault: boolean;
  /** '' for bundles without an image encoder. */
  pooledImageOutput: '' | 'pooler_output' | 'image_embeds';
  /** How the image encoder's input is prepared (null without one): the edge fits init images to it. */
  imagePreprocess: ImagePreprocessConfig | null;
  timestepInput: 'per_row' | 'scalar';
  /** Whether its sessions are loaded now; a request for one that is not loads it. */
  state: BundleState;
}

export interface EngineStats {
  activeSequences: number;
  /** Sequences waiting for a slow reader, holding no generation slot. */
  pausedSequences: number;
  /** Waiting for a generation slot or for their bundle to load. */
  queuedSequences: number;
  /** UNet rows waiting for a batch, over all bundles. */
  queuedUnetRows: number;
  executors: ExecutorStats;
  /** Loaded models by the execution provider they run on (cuda, cpu). */
  modelsByProvider: Record<string, number>;
  /** Bundles whose sessions are loaded now. */
  loadedBundles: number;
  /** Bytes of weights they hold, as the memory budget counts them. */
  loadedWeightBytes: number;
}

/** What a bundle's first load tells about it, kept while it is unloaded. */
type BundleFacts = Omit<ModelInfo, 'isDefault' | 'state'>;

/**
 * Every bundle, which of them are loaded (the catalog), their batching loops, and admission
 * control: the one object the server talks to.
 */
export class Engine {
  private constructor(
    private readonly catalog: BundleCatalog<BundleRuntime>,
    private readonly facts: ReadonlyMap<string, BundleFacts>,
    private readonly schedulers: ReadonlyMap<string, SchedulerSet>,
    readonly defaultModel: string,
    private readonly gate: AdmissionGate,
    private readonly pool: SessionPool,
  ) {}

  static async create(options: EngineOptions): Promise<Engine> {
    const dirs = await findBundleDirs(options.modelsDir);
    // Configured, else declared by the models folder (read before any model loads, so a bad file fails fast), else the first bundle.
    const requestedDefault = options.defaultModel ?? (await declaredDefaultModel(options.modelsDir));
    if (dirs.length === 0) throw new BundleError(`no bundles found in ${options.modelsDir} (expected folders with stepframe.json or unet/model.onnx)`);
    const bundles = await Promise.all(dirs.map(async (dir) => ({ dir, ...(await bundleWeightFiles(dir)) })));
    const defaultModel = requestedDefault ?? bundles[0].name;
    if (!bundles.some((b) => b.name === defaultModel)) {
      throw new BundleError(`default model ${defaultModel} is not among the bundles (${bundles.map((b) => b.name).join(', ')})`);
    }
    // The executor layout follows the models' size where the flags leave it open (layout.ts says why).
    const layout = layoutFor(options.session, largestUnetBytes(dirs));
    options.session.log('executor layout', { rule: layout.rule });
    const pool = new SessionPool(layout.settings);
    const loader = new BundleLoader(pool, { verifyWeights: options.verifyWeights, log: options.session.log, warn: options.session.warn });
    const batchers = new Map<OnnxModel, BatchedModel>();
    const facts = new Map<string, BundleFacts>();
    const schedulers = new Map<string, SchedulerSet>();
    const limits = options.residency ?? { budgetBytes: null, maxLoaded: null };
    const catalog = new BundleCatalog<BundleRuntime>(
      {
        load: async (dir) => {
          const bundle = await loader.load(dir);
          const name = bundle.manifest.name;
          if (!schedulers.has(name)) schedulers.set(name, new SchedulerSet(bundle.schedulerConfig));
          const runtime = new BundleRuntime(bundle, batchers, options.batch, options.observer ?? (() => undefined), schedulers.get(name));
          try {
            checkDefaults(runtime);
            if (runtime.imageEncoder) await runtime.noImage();
          } catch (error) {
            await loader.unload(bundle);
            throw error;
          }
          if (!facts.has(name)) facts.set(name, describe(runtime));
          return runtime;
        },
        unload: async (runtime) => {
          for (const model of await loader.unload(runtime.bundle)) batchers.delete(model);
        },
        copies: (file) => (pool.sharedAcrossExecutors(file) ? 1 : pool.executors.plannedSize(pool.executors.providerInUse ?? layout.settings.executionProviders[0])),
        onEvent: (event) => {
          options.session.log(event.kind === 'load' ? 'bundle loaded' : 'bundle unloaded', { model: event.model, seconds: event.seconds });
          options.onBundleEvent?.(event);
        },
      },
      limits,
    );
    if (limits.budgetBytes !== null || limits.maxLoaded !== null) {
      options.session.log('bundle residency', { budget: limits.budgetBytes === null ? 'none' : formatBytes(limits.budgetBytes), maxLoaded: limits.maxLoaded ?? 'no limit', bundles: bundles.length });
    }
    try {
      // Every bundle loads once at start, so a broken one fails here, not at its first request.
      // The default loads last: where not everything fits, it is the one left loaded.
      for (const b of bundles) catalog.add(b.name, b.dir, b.files);
      for (const b of [...bundles.filter((b) => b.name !== defaultModel), ...bundles.filter((b) => b.name === defaultModel)]) await catalog.preload(b.name);
    } catch (error) {
      await pool.dispose();
      throw error;
    }
    return new Engine(catalog, facts, schedulers, defaultModel, new AdmissionGate(options.admission, () => catalog.waitingForLoad), pool);
  }

  models(): ModelInfo[] {
    return this.catalog.names().map((name) => this.model(name));
  }

  /** The bundle a request names ('' means the default), or an INVALID_ARGUMENT naming the choices. */
  model(name: string): ModelInfo {
    const resolved = this.resolve(name);
    return { ...this.facts.get(resolved)!, isDefault: resolved === this.defaultModel, state: this.catalog.state(resolved) };
  }

  private resolve(name: string): string {
    const resolved = name || this.defaultModel;
    if (!this.catalog.has(resolved)) throw new InvalidArgumentError('model', `unknown model ${quoteInput(name)}; available: ${this.catalog.names().join(', ')}`);
    return resolved;
  }

  stats(): EngineStats {
    const runtimes = this.catalog.loaded();
    const unets = new Set(runtimes.map((r) => r.unet));
    const models = new Set(runtimes.flatMap((r) => [r.bundle.textEncoder, r.bundle.unet, r.bundle.vaeDecoder, r.bundle.imageEncoder, r.bundle.fuser]));
    const modelsByProvider: Record<string, number> = {};
    for (const model of models) if (model) modelsByProvider[model.provider] = (modelsByProvider[model.provider] ?? 0) + 1;
    return {
      activeSequences: this.gate.activeCount,
      pausedSequences: this.gate.pausedCount,
      queuedSequences: this.gate.queuedCount + this.catalog.waitingForLoad,
      queuedUnetRows: [...unets].reduce((sum, u) => sum + u.queuedRows, 0),
      executors: this.pool.executors.stats(),
      modelsByProvider,
      loadedBundles: runtimes.length,
      loadedWeightBytes: this.catalog.loadedBytes(),
    };
  }

  /** False while a lost executor is being replaced: the server reports NOT_SERVING meanwhile. */
  get healthy(): boolean {
    return this.pool.executors.healthy;
  }

  onHealthChange(listener: (healthy: boolean) => void): () => void {
    return this.pool.executors.onHealthChange(listener);
  }

  /** Test-only fault hook: executor `index` exits during its next model call. */
  exitExecutorOnNextCall(index: number): Promise<void> {
    return this.pool.executors.exitOnNextRun(index);
  }

  /**
   * Generates one image per step, in order. Admission happens before the first image: this throws
   * OverloadedError when the queue is full, and waits (cancellably) for its bundle to load and for
   * a slot otherwise. The bundle stays loaded until the sequence ends.
   */
  async *generate(request: SequenceRequest, hooks: SequenceHooks = {}): AsyncGenerator<StepImage> {
    const name = this.resolve(request.model);
    // Before admission: a step count the scheduler cannot do is refused without loading or running anything.
    checkSampling(this.schedulers.get(name)!, request.scheduler, request.numInferenceSteps, request.eta, request.frameStrength);
    // A sequence waiting for its bundle to load is queued: past the queue limit it is refused now.
    if (this.catalog.state(name) !== 'loaded') this.gate.checkQueueRoom();
    const hold = await this.catalog.acquire(name, hooks.signal);
    try {
      yield* this.admitted(hold.runtime, request, hooks);
    } finally {
      hold.release();
    }
  }

  private async *admitted(runtime: BundleRuntime, request: SequenceRequest, hooks: SequenceHooks): AsyncGenerator<StepImage> {
    let release = await this.gate.acquire(hooks.signal);
    // A slow reader: the slot goes to others meanwhile; this sequence's state (the previous frame,
    // the remaining steps) waits in the suspended loop and costs no model time.
    const waitForReader = async (): Promise<void> => {
      const reader = hooks.readerReady?.();
      if (!reader) return;
      const paused = this.gate.pause(release);
      release = () => undefined;
      try {
        await abortable(reader, hooks.signal);
      } catch (error) {
        paused.leave(); // the reader stalled too long or went away
        throw error;
      }
      release = await paused.resume(hooks.signal);
    };
    try {
      for await (const image of runSequence(runtime, request, hooks)) {
        // Before handing the image over too: progress events may have filled the reader's window
        // meanwhile, and a write into a full window would wait while holding the slot.
        await waitForReader();
        yield image;
        await waitForReader();
      }
    } finally {
      release();
    }
  }

  async dispose(): Promise<void> {
    await this.pool.dispose();
  }
}

function describe(r: BundleRuntime): BundleFacts {
  const m = r.bundle.manifest;
  return {
    name: m.name,
    fuserKind: m.fuserKind,
    width: m.width,
    height: m.height,
    imageGuidance: m.imageGuidance,
    defaults: m.defaults,
    schedulers: SCHEDULER_NAMES,
    provider: r.bundle.unet.provider,
    pooledImageOutput: r.imageEncoder ? r.pooledImageOutput : '',
    imagePreprocess: r.imageEncoder ? r.bundle.imagePreprocess : null,
    timestepInput: r.scalarTimestep ? 'scalar' : 'per_row',
  };
}

/** Builds the run the request would use (cheap: tables are cached), so invalid step counts fail at the edge. */
function checkSampling(schedulers: SchedulerSet, scheduler: string, steps: number, eta: number, frameStrength = 1): void {
  const run = schedulers.get(scheduler).setTimesteps(steps, new SeededRandom(0n), { eta });
  checkFrameStrength(run, scheduler, frameStrength);
}

/** A bundle whose own defaults cannot run would fail every request that leaves them unset: refuse it at load. */
function checkDefaults(runtime: BundleRuntime): void {
  const { scheduler, numInferenceSteps } = runtime.bundle.manifest.defaults;
  try {
    checkSampling(runtime.schedulers, scheduler, numInferenceSteps, 0);
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    throw new BundleError(`bundle ${runtime.name}: defaults (scheduler ${quoteInput(scheduler)}, ${numInferenceSteps} steps) cannot run: ${error.message}`, { cause: error });
  }
}
