import { checkManifestSchema } from './manifestSchema.js';

/** The ONNX components a bundle may hold; see docs/model-bundle.md. */
export const COMPONENT_NAMES = ['text_encoder', 'image_encoder', 'vae_encoder', 'vae_decoder', 'unet', 'fuser'] as const;
export type ComponentName = (typeof COMPONENT_NAMES)[number];

export type TensorDtype = 'float32' | 'float16' | 'int64' | 'int32';

/** One input or output as the manifest declares it; string dims are symbolic (the batch axis). */
export interface TensorSpec {
  name: string;
  dtype: TensorDtype;
  shape: (number | string)[];
}

export interface ComponentSpec {
  /** Relative to the bundle folder; shared components point into a sibling folder. */
  path: string;
  inputs?: TensorSpec[];
  outputs?: TensorSpec[];
  sha256?: string;
  /** Files the graph keeps its weights in (ONNX external data, beside model.onnx), each with its sha256. */
  externalData?: ExternalDataSpec[];
}

/** One external-data file: `path` relative to the model file's folder, as the graph's tensors name it. */
export interface ExternalDataSpec {
  path: string;
  sha256: string;
}

/** The parts of `stepframe.json` the engine acts on, in camelCase. */
export interface BundleManifest {
  name: string;
  fuserKind: string;
  height: number;
  width: number;
  latentChannels: number;
  latentDownscale: number;
  scalingFactor: number;
  components: Partial<Record<ComponentName, ComponentSpec>>;
  tokenizerPath: string;
  featureExtractorPath: string | null;
  schedulerConfigPath: string;
  /** Three guidance rows with separate text and image scales (InstructPix2Pix) are supported. */
  imageGuidance: boolean;
  defaults: BundleDefaults;
  /** Where the weights came from, passed through for ListModels. */
  provenance: Record<string, unknown>;
  /** True when the folder is a plain Optimum SD export that was read as the paper's baseline. */
  synthesized: boolean;
}

export interface BundleDefaults {
  scheduler: string;
  numInferenceSteps: number;
  guidanceScale: number;
  imageGuidanceScale: number;
}

export const FORMAT = 'stepframe.bundle';
export const FORMAT_VERSION = 1;

/** stepframe.json as the schema guarantees it once checked (snake_case, as written). */
interface RawManifest {
  name: string;
  fuser: { kind: string };
  image: { height: number; width: number };
  latent: { channels: number; downscale: number; scaling_factor: number };
  components: Record<string, { path: string; inputs?: TensorSpec[]; outputs?: TensorSpec[]; sha256?: string; external_data?: ExternalDataSpec[] }>;
  tokenizer: { path: string };
  feature_extractor?: { path: string } | null;
  scheduler?: { path: string };
  conditioning: { image_guidance: boolean };
  defaults: { scheduler: string; num_inference_steps: number; guidance_scale: number; image_guidance_scale: number };
  provenance?: Record<string, unknown>;
}

/**
 * Validates a parsed `stepframe.json` against schemas/stepframe-bundle.schema.json (the one
 * definition training/ checks too) and reads what the engine acts on; errors name the file and the field.
 */
export function parseManifest(raw: unknown, file = 'stepframe.json'): BundleManifest {
  checkManifestSchema(raw, file);
  const m = raw as RawManifest;
  const components: BundleManifest['components'] = {};
  for (const [name, spec] of Object.entries(m.components)) {
    components[name as ComponentName] = {
      path: spec.path,
      inputs: spec.inputs,
      outputs: spec.outputs,
      sha256: spec.sha256,
      externalData: spec.external_data,
    };
  }
  return {
    name: m.name,
    fuserKind: m.fuser.kind,
    height: m.image.height,
    width: m.image.width,
    latentChannels: m.latent.channels,
    latentDownscale: m.latent.downscale,
    scalingFactor: m.latent.scaling_factor,
    components,
    tokenizerPath: m.tokenizer.path,
    featureExtractorPath: m.feature_extractor ? m.feature_extractor.path : null,
    schedulerConfigPath: m.scheduler ? m.scheduler.path : 'scheduler/scheduler_config.json',
    imageGuidance: m.conditioning.image_guidance,
    defaults: {
      scheduler: m.defaults.scheduler,
      numInferenceSteps: m.defaults.num_inference_steps,
      // 0 (or 1) turns classifier-free guidance off: what distilled one-to-four-step models want.
      guidanceScale: m.defaults.guidance_scale,
      imageGuidanceScale: m.defaults.image_guidance_scale,
    },
    provenance: m.provenance ?? {},
    synthesized: false,
  };
}

/** What diffusers' component configs (unet/config.json, vae_decoder/config.json) say about the latent space. */
export interface DiffusersConfigs {
  sampleSize?: number;
  latentChannels?: number;
  scalingFactor?: number;
  /** One entry per VAE block: the VAE downsamples 2^(blocks − 1) times (8 for SD's four blocks). */
  vaeBlocks?: number;
}

/**
 * A plain Optimum SD export (no stepframe.json) read as the paper's baseline: text-only
 * conditioning, and the latent space its diffusers configs describe (SD 1.x's defaults where a
 * config is missing: 8x VAE, 4 latent channels, 0.18215). The loader sets the default scheduler
 * from scheduler_config.json (DDPM when it names none).
 */
export function optimumBaselineManifest(name: string, configs: DiffusersConfigs = {}): BundleManifest {
  const latentSize = configs.sampleSize ?? 64;
  const downscale = 2 ** ((configs.vaeBlocks ?? 4) - 1);
  return {
    name,
    fuserKind: 'baseline',
    height: latentSize * downscale,
    width: latentSize * downscale,
    latentChannels: configs.latentChannels ?? 4,
    latentDownscale: downscale,
    scalingFactor: configs.scalingFactor ?? 0.18215,
    components: {
      text_encoder: { path: 'text_encoder/model.onnx' },
      unet: { path: 'unet/model.onnx' },
      vae_decoder: { path: 'vae_decoder/model.onnx' },
    },
    tokenizerPath: 'tokenizer',
    featureExtractorPath: null,
    schedulerConfigPath: 'scheduler/scheduler_config.json',
    imageGuidance: false,
    defaults: { scheduler: 'ddpm', numInferenceSteps: 50, guidanceScale: 7.5, imageGuidanceScale: 1 },
    provenance: { source: 'optimum export (no stepframe.json)' },
    synthesized: true,
  };
}
