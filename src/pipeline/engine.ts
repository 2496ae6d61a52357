import type { BatchLimits, BatchObserver, BatchedModel } from './batching/batchedModel.js';
import { BundleLoader, declaredDefaultModel, findBundleDirs } from './bundle/loadBundle.js';
import type { BundleDefaults } from './bundle/manifest.js';
import type { OnnxModel } from './bundle/onnxModel.js';
import type { ImagePreprocessConfig } from './bundle/preprocessorConfig.js';
import { SessionPool } from './bundle/sessionPool.js';
import { AdmissionGate, type AdmissionLimits } from './admissionGate.js';
import { BundleRuntime } from './bundleRuntime.js';
import { BundleError, CancelledError, EngineError, InvalidArgumentError } from './errors.js';
import type { ExecutionSettings } from './execution/executionSettings.js';
import type { ExecutorStats } from './execution/executorPool.js';
import { largestUnetBytes, layoutFor } from './execution/layout.js';
import { SCHEDULER_NAMES } from './schedulers/index.js';
import { runSequence } from './sequenceLoop.js';
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
}

export interface EngineStats {
  activeSequences: number;
  /** Sequences waiting for a slow reader, holding no generation slot. */
  pausedSequences: number;
  queuedSequences: number;
  /** UNet rows waiting for a batch, over all bundles. */
  queuedUnetRows: number;
  executors: ExecutorStats;
  /** Loaded models by the execution provider they run on (cuda, cpu). */
  modelsByProvider: Record<string, number>;
}

/** Every loaded bundle, their batching loops, and admission control: the one object the server talks to. */
export class Engine {
  /** Fixed once loaded: a replaced executor loads each model on the provider it had. */
  private readonly modelsByProvider: Record<string, number>;

  private constructor(
    private readonly runtimes: ReadonlyMap<string, BundleRuntime>,
    readonly defaultModel: string,
    private readonly gate: AdmissionGate,
    private readonly pool: SessionPool,
  ) {
    const models = new Set([...runtimes.values()].flatMap((r) => [r.bundle.textEncoder, r.bundle.unet, r.bundle.vaeDecoder, r.bundle.imageEncoder, r.bundle.fuser]));
    this.modelsByProvider = {};
    for (const model of models) if (model) this.modelsByProvider[model.provider] = (this.modelsByProvider[model.provider] ?? 0) + 1;
  }

  static async create(options: EngineOptions): Promise<Engine> {
    const dirs = await findBundleDirs(options.modelsDir);
    // Configured, else declared by the models folder (read before any model loads, so a bad file fails fast), else the first bundle.
    const requestedDefault = options.defaultModel ?? (await declaredDefaultModel(options.modelsDir));
    if (dirs.length === 0) throw new BundleError(`no bundles found in ${options.modelsDir} (expected folders with stepframe.json or unet/model.onnx)`);
    // The executor layout follows the models' size where the flags leave it open (layout.ts says why).
    const layout = layoutFor(options.session, largestUnetBytes(dirs));
    options.session.log('executor layout', { rule: layout.rule });
    const pool = new SessionPool(layout.settings);
    const loader = new BundleLoader(pool, { verifyWeights: options.verifyWeights, log: options.session.log, warn: options.session.warn });
    const batchers = new Map<OnnxModel, BatchedModel>();
    const runtimes = new Map<string, BundleRuntime>();
    try {
      for (const dir of dirs) {
        const bundle = await loader.load(dir);
        if (runtimes.has(bundle.manifest.name)) throw new BundleError(`two bundles are named ${bundle.manifest.name} (in ${dir})`);
        const runtime = new BundleRuntime(bundle, batchers, options.batch, options.observer ?? (() => undefined));
        checkDefaults(runtime);
        if (runtime.imageEncoder) await runtime.noImage();
        runtimes.set(bundle.manifest.name, runtime);
      }
    } catch (error) {
      await pool.dispose();
      throw error;
    }
    const defaultModel = requestedDefault ?? [...runtimes.keys()][0];
    if (!runtimes.has(defaultModel)) {
      await pool.dispose();
      throw new BundleError(`default model ${defaultModel} is not among the loaded bundles (${[...runtimes.keys()].join(', ')})`);
    }
    return new Engine(runtimes, defaultModel, new AdmissionGate(options.admission), pool);
  }

  models(): ModelInfo[] {
    return [...this.runtimes.values()].map((r) => this.describe(r));
  }

  /** The bundle a request names ('' means the default), or an INVALID_ARGUMENT naming the choices. */
  model(name: string): ModelInfo {
    return this.describe(this.runtime(name));
  }

  private runtime(name: string): BundleRuntime {
    const runtime = this.runtimes.get(name || this.defaultModel);
    if (!runtime) throw new InvalidArgumentError('model', `unknown model ${quoteInput(name)}; available: ${[...this.runtimes.keys()].join(', ')}`);
    return runtime;
  }

  private describe(r: BundleRuntime): ModelInfo {
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
      isDefault: m.name === this.defaultModel,
      pooledImageOutput: r.imageEncoder ? r.pooledImageOutput : '',
      imagePreprocess: r.imageEncoder ? r.bundle.imagePreprocess : null,
      timestepInput: r.scalarTimestep ? 'scalar' : 'per_row',
    };
  }

  stats(): EngineStats {
    const unets = new Set([...this.runtimes.values()].map((r) => r.unet));
    return {
      activeSequences: this.gate.activeCount,
      pausedSequences: this.gate.pausedCount,
      queuedSequences: this.gate.queuedCount,
      queuedUnetRows: [...unets].reduce((sum, u) => sum + u.queuedRows, 0),
      executors: this.pool.executors.stats(),
      modelsByProvider: this.modelsByProvider,
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
   * OverloadedError when the queue is full, and waits (cancellably) for a slot otherwise.
   */
  async *generate(request: SequenceRequest, hooks: SequenceHooks = {}): AsyncGenerator<StepImage> {
    const runtime = this.runtime(request.model);
    // Before admission: a step count the scheduler cannot do is refused without running the encoders and fuser.
    checkSampling(runtime, request.scheduler, request.numInferenceSteps, request.eta);
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

/** `promise`, or the signal's reason once it fires first. */
function abortable(promise: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason instanceof EngineError ? signal.reason : new CancelledError());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof EngineError ? signal.reason : new CancelledError());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      () => (signal.removeEventListener('abort', onAbort), resolve()),
      (error: unknown) => (signal.removeEventListener('abort', onAbort), reject(error)),
    );
  });
}

/** Builds the run the request would use (cheap: tables are cached), so invalid step counts fail at the edge. */
function checkSampling(runtime: BundleRuntime, scheduler: string, steps: number, eta: number): void {
  runtime.scheduler(scheduler).setTimesteps(steps, new SeededRandom(0n), { eta });
}

/** A bundle whose own defaults cannot run would fail every request that leaves them unset: refuse it at load. */
function checkDefaults(runtime: BundleRuntime): void {
  const { scheduler, numInferenceSteps } = runtime.bundle.manifest.defaults;
  try {
    checkSampling(runtime, scheduler, numInferenceSteps, 0);
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    throw new BundleError(`bundle ${runtime.name}: defaults (scheduler ${quoteInput(scheduler)}, ${numInferenceSteps} steps) cannot run: ${error.message}`, { cause: error });
  }
}
