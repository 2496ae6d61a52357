import { BundleError } from '../errors.js';

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

type Json = Record<string, unknown>;

function field<T>(file: string, obj: Json, path: string, check: (v: unknown) => v is T, expected: string): T {
  const value = path.split('.').reduce<unknown>((o, key) => (o && typeof o === 'object' ? (o as Json)[key] : undefined), obj);
  if (!check(value)) {
    throw new BundleError(`${file}: ${path} must be ${expected}, got ${JSON.stringify(value)}`);
  }
  return value;
}

const isPositiveInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
const isPositive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
const isNonNegative = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isZerosKind = (v: unknown): v is 'zeros' => v === 'zeros';
const isEmptyPrompt = (v: unknown): v is 'empty_prompt' => v === 'empty_prompt';

/** Validates a parsed `stepframe.json`; every error names the file and the field. */
export function parseManifest(raw: unknown, file = 'stepframe.json'): BundleManifest {
  if (!isObject(raw)) throw new BundleError(`${file}: must be a JSON object`);
  field(file, raw, 'format', (v): v is string => v === FORMAT, JSON.stringify(FORMAT));
  field(file, raw, 'format_version', (v): v is number => v === FORMAT_VERSION, String(FORMAT_VERSION));
  const components = field(file, raw, 'components', isObject, 'an object');
  const parsed: BundleManifest['components'] = {};
  for (const name of Object.keys(components)) {
    if (!(COMPONENT_NAMES as readonly string[]).includes(name)) {
      throw new BundleError(`${file}: components.${name} is not a known component (${COMPONENT_NAMES.join(', ')})`);
    }
    const spec = field(file, components, name, isObject, 'an object');
    parsed[name as ComponentName] = {
      path: field(file, spec, 'path', isString, 'a relative path'),
      inputs: spec.inputs as TensorSpec[] | undefined,
      outputs: spec.outputs as TensorSpec[] | undefined,
      sha256: spec.sha256 as string | undefined,
      externalData: spec.external_data === undefined ? undefined : parseExternalData(file, `components.${name}.external_data`, spec.external_data),
    };
  }
  for (const required of ['text_encoder', 'unet', 'vae_decoder'] as const) {
    if (!parsed[required]) throw new BundleError(`${file}: components.${required} is required`);
  }
  const fuserKind = field(file, raw, 'fuser.kind', isString, 'a fuser kind');
  if (fuserKind !== 'baseline' && (!parsed.fuser || !parsed.image_encoder)) {
    throw new BundleError(`${file}: fuser.kind ${fuserKind} needs components.fuser and components.image_encoder`);
  }
  checkConditioning(file, raw);
  const featureExtractor = raw.feature_extractor;
  return {
    name: field(file, raw, 'name', isString, 'a non-empty string'),
    fuserKind,
    height: field(file, raw, 'image.height', isPositiveInt, 'a positive integer'),
    width: field(file, raw, 'image.width', isPositiveInt, 'a positive integer'),
    latentChannels: field(file, raw, 'latent.channels', isPositiveInt, 'a positive integer'),
    latentDownscale: field(file, raw, 'latent.downscale', isPositiveInt, 'a positive integer'),
    scalingFactor: field(file, raw, 'latent.scaling_factor', isPositive, 'a positive number'),
    components: parsed,
    tokenizerPath: field(file, raw, 'tokenizer.path', isString, 'a relative path'),
    featureExtractorPath: isObject(featureExtractor) ? field(file, featureExtractor, 'path', isString, 'a relative path') : null,
    schedulerConfigPath: isObject(raw.scheduler)
      ? field(file, raw, 'scheduler.path', isString, 'a relative path')
      : 'scheduler/scheduler_config.json',
    imageGuidance: field(file, raw, 'conditioning.image_guidance', isBool, 'a boolean'),
    defaults: {
      scheduler: field(file, raw, 'defaults.scheduler', isString, 'a scheduler name'),
      numInferenceSteps: field(file, raw, 'defaults.num_inference_steps', isPositiveInt, 'a positive integer'),
      // 0 (or 1) turns classifier-free guidance off: what distilled one-to-four-step models want.
      guidanceScale: field(file, raw, 'defaults.guidance_scale', isNonNegative, 'a number >= 0'),
      imageGuidanceScale: field(file, raw, 'defaults.image_guidance_scale', isPositive, 'a positive number'),
    },
    provenance: isObject(raw.provenance) ? raw.provenance : {},
    synthesized: false,
  };
}

const isSha256 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/i.test(v);

function parseExternalData(file: string, where: string, raw: unknown): ExternalDataSpec[] {
  if (!Array.isArray(raw)) throw new BundleError(`${file}: ${where} must be a list of {path, sha256}, got ${JSON.stringify(raw)}`);
  return raw.map((entry, i) => {
    if (!isObject(entry)) throw new BundleError(`${file}: ${where}[${i}] must be an object {path, sha256}`);
    const path = field(file, entry, 'path', isString, 'a relative path');
    if (path.includes('..') || path.startsWith('/')) throw new BundleError(`${file}: ${where}[${i}].path must stay beside the model file, got ${JSON.stringify(path)}`);
    return { path, sha256: field(file, entry, 'sha256', isSha256, 'a sha256 hex digest') };
  });
}

/** Format version 1 knows one way to condition without an image (zero embeddings) and one without text (the empty prompt). */
function checkConditioning(file: string, raw: Json): void {
  field(file, raw, 'conditioning.first_step.kind', isZerosKind, '"zeros"');
  field(file, raw, 'conditioning.unconditional.text.kind', isEmptyPrompt, '"empty_prompt"');
  field(file, raw, 'conditioning.unconditional.image.kind', isZerosKind, '"zeros"');
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
