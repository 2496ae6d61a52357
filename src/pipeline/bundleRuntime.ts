import { type BatchLimits, type BatchObserver, BatchedModel } from './batching/batchedModel.js';
import type { LoadedBundle } from './bundle/loadBundle.js';
import type { OnnxModel } from './bundle/onnxModel.js';
import { SchedulerSet } from './schedulers/schedulerSet.js';
import type { Scheduler } from './schedulers/index.js';
import type { Tensor } from './tensor.js';

/** Image embeddings: the image encoder's outputs, or zeros for "no previous image". */
export interface ImageEmbedding {
  hidden: Tensor;
  pooled: Tensor;
}

/**
 * A loaded bundle plus one batching loop per model. Models shared between bundles share their
 * loop too (the batcher map is keyed by session), so their calls batch across bundles.
 */
export class BundleRuntime {
  readonly textEncoder: BatchedModel;
  readonly unet: BatchedModel;
  readonly vaeDecoder: BatchedModel;
  readonly imageEncoder: BatchedModel | null;
  readonly fuser: BatchedModel | null;
  /** The UNet takes one scalar timestep per call, so only rows at the same timestep can share it. */
  readonly scalarTimestep: boolean;
  readonly timestepType: 'int64' | 'float32';
  /** Width of an LCM UNet's `timestep_cond` (the embedded guidance scale); null for other UNets. */
  readonly guidanceEmbeddingWidth: number | null;
  /** The image encoder's pooled embedding: pooler_output, or a projection model's image_embeds. */
  readonly pooledImageOutput: 'pooler_output' | 'image_embeds';
  private zeroImage: ImageEmbedding | null = null;

  constructor(
    readonly bundle: LoadedBundle,
    batchers: Map<OnnxModel, BatchedModel>,
    limits: BatchLimits,
    observer: BatchObserver,
    /** Kept by the engine across unloads, so a reloaded bundle keeps its tables. */
    readonly schedulers: SchedulerSet = new SchedulerSet(bundle.schedulerConfig),
  ) {
    this.scalarTimestep = bundle.unet.inputRank('timestep') === 0;
    // float16 timesteps are fed as float32 and rounded by the executor; int32 ones likewise from int64.
    const timestepDtype = bundle.unet.inputDtype('timestep');
    this.timestepType = timestepDtype === 'float32' || timestepDtype === 'float16' ? 'float32' : 'int64';
    const batcher = (model: OnnxModel, outputs: string[], scalar: string[] = []) => {
      let b = batchers.get(model);
      if (!b) {
        b = new BatchedModel(model, outputs, limits, observer, new Set(scalar));
        batchers.set(model, b);
      }
      return b;
    };
    this.textEncoder = batcher(bundle.textEncoder, ['last_hidden_state', 'pooler_output']);
    this.unet = batcher(bundle.unet, ['out_sample'], this.scalarTimestep ? ['timestep'] : []);
    this.vaeDecoder = batcher(bundle.vaeDecoder, ['sample']);
    this.guidanceEmbeddingWidth = bundle.unet.hasInput('timestep_cond') ? bundle.unet.inputDim('timestep_cond', 1) ?? null : null;
    this.pooledImageOutput = bundle.imageEncoder?.hasOutput('pooler_output') === false ? 'image_embeds' : 'pooler_output';
    this.imageEncoder = bundle.imageEncoder ? batcher(bundle.imageEncoder, ['last_hidden_state', this.pooledImageOutput]) : null;
    this.fuser = bundle.fuser ? batcher(bundle.fuser, ['encoder_hidden_states']) : null;
  }

  get name(): string {
    return this.bundle.manifest.name;
  }

  scheduler(name: string): Scheduler {
    return this.schedulers.get(name);
  }

  /** The declared "no previous image" input: zero embeddings shaped like the image encoder's outputs. */
  async noImage(): Promise<ImageEmbedding> {
    if (!this.zeroImage && this.imageEncoder && this.bundle.imagePreprocess) {
      const { cropHeight, cropWidth } = this.bundle.imagePreprocess;
      // One probe call at load tells the token count and width, whatever the export declares.
      const out = await this.imageEncoder.run({
        feeds: { pixel_values: { type: 'float32', data: new Float32Array(3 * cropHeight * cropWidth), dims: [1, 3, cropHeight, cropWidth] } },
        rows: 1,
      });
      const zeros = (t: Tensor): Tensor => ({ data: new Float32Array(t.data.length), dims: t.dims });
      this.zeroImage = { hidden: zeros(out.last_hidden_state), pooled: zeros(out[this.pooledImageOutput]) };
    }
    if (!this.zeroImage) throw new Error(`bundle ${this.name} has no image encoder`);
    return this.zeroImage;
  }

  latentDims(): number[] {
    const m = this.bundle.manifest;
    return [1, m.latentChannels, m.height / m.latentDownscale, m.width / m.latentDownscale];
  }
}
