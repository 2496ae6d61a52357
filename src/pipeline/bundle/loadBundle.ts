import { existsSync } from 'node:fs';
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import { BundleError } from '../errors.js';
import { type SchedulerConfig, parseSchedulerConfig } from '../schedulers/index.js';
import { schedulerForConfig } from '../schedulers/schedulerClass.js';
import { ClipTokenizer } from '../tokenizer.js';
import { FUSER_INPUTS } from './contracts.js';
import { type BundleManifest, type ComponentName, optimumBaselineManifest, parseManifest } from './manifest.js';
import type { OnnxModel } from './onnxModel.js';
import { type ImagePreprocessConfig, parsePreprocessorConfig } from './preprocessorConfig.js';
import { SessionPool } from './sessionPool.js';
import { verifyComponentHash } from './verifyWeights.js';

export const MANIFEST_FILE = 'stepframe.json';

/** A bundle with its sessions created and checked; everything the sequence loop needs. */
export interface LoadedBundle {
  dir: string;
  manifest: BundleManifest;
  tokenizer: ClipTokenizer;
  schedulerConfig: SchedulerConfig;
  /** Null for baseline bundles, which never look at an image. */
  imagePreprocess: ImagePreprocessConfig | null;
  textEncoder: OnnxModel;
  unet: OnnxModel;
  vaeDecoder: OnnxModel;
  imageEncoder: OnnxModel | null;
  fuser: OnnxModel | null;
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new BundleError(`${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BundleError(`${file}: is not valid JSON (${(error as Error).message})`, { cause: error });
  }
}

/** The file in a models folder that names its default bundle (docs/model-bundle.md, "The default bundle"). */
export const DEFAULT_MODEL_FILE = 'default-model.json';

/**
 * The bundle a models folder declares as its default (`{"model": NAME, ...}` in default-model.json),
 * or undefined when it declares none; the rest of the file records why that one was chosen.
 */
export async function declaredDefaultModel(modelsDir: string): Promise<string | undefined> {
  const file = join(modelsDir, DEFAULT_MODEL_FILE);
  if (!existsSync(file)) return undefined;
  const raw = (await readJson(file)) as { model?: unknown };
  if (typeof raw.model !== 'string' || raw.model === '') throw new BundleError(`${file}: "model" must name a bundle in ${modelsDir}`);
  return raw.model;
}

/** Bundle folders directly under `modelsDir`: those with a stepframe.json or an Optimum unet/model.onnx. */
export async function findBundleDirs(modelsDir: string): Promise<string[]> {
  const entries = await readdir(modelsDir, { withFileTypes: true }).catch((error) => {
    throw new BundleError(`model directory ${modelsDir} cannot be read (${(error as NodeJS.ErrnoException).code})`, { cause: error });
  });
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => join(modelsDir, e.name))
    .filter((dir) => existsSync(join(dir, MANIFEST_FILE)) || existsSync(join(dir, 'unet', 'model.onnx')))
    .sort();
}

async function readManifest(dir: string): Promise<BundleManifest> {
  const manifestFile = join(dir, MANIFEST_FILE);
  if (existsSync(manifestFile)) return parseManifest(await readJson(manifestFile), manifestFile);
  // A plain Optimum export: the latent space and scheduler as diffusers' configs describe them.
  const optional = async (...parts: string[]) => (existsSync(join(dir, ...parts)) ? ((await readJson(join(dir, ...parts))) as Record<string, unknown>) : {});
  const vae = await optional('vae_decoder', 'config.json');
  const unet = await optional('unet', 'config.json');
  const number = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);
  return optimumBaselineManifest(basename(dir), {
    sampleSize: number(unet.sample_size),
    latentChannels: number(vae.latent_channels),
    scalingFactor: number(vae.scaling_factor),
    vaeBlocks: Array.isArray(vae.block_out_channels) && vae.block_out_channels.length > 0 ? vae.block_out_channels.length : undefined,
  });
}

/** One model file of a bundle as the memory budget counts it, before anything is loaded. */
export interface WeightFile {
  component: ComponentName;
  /** The key the session pool holds it under: bundles sharing a file share this. */
  key: string;
  /** model.onnx plus its external data. */
  bytes: number;
  externalData: boolean;
}

/** The components a bundle loads: a baseline bundle never looks at an image, and no bundle loads a VAE encoder. */
function loadedComponents(manifest: BundleManifest): ComponentName[] {
  const names: ComponentName[] = manifest.fuserKind === 'baseline' ? ['text_encoder', 'unet', 'vae_decoder'] : ['text_encoder', 'unet', 'vae_decoder', 'image_encoder', 'fuser'];
  return names.filter((name) => manifest.components[name]);
}

/**
 * External data files beside a component's model.onnx: those its manifest lists, else Optimum's
 * `model.onnx_data` when present (exports above 2 GB).
 */
function externalDataFiles(file: string, listed: readonly { path: string }[] | undefined): string[] {
  if (listed && listed.length > 0) return listed.map((d) => resolve(dirname(file), d.path));
  return existsSync(`${file}_data`) ? [`${file}_data`] : [];
}

/** The bundle's name and every model file it would load, with sizes: what the memory budget weighs before loading. */
export async function bundleWeightFiles(dir: string): Promise<{ name: string; files: WeightFile[] }> {
  const manifest = await readManifest(dir);
  const files: WeightFile[] = [];
  for (const component of loadedComponents(manifest)) {
    const spec = manifest.components[component]!;
    const file = resolve(dir, spec.path);
    if (!existsSync(file)) throw new BundleError(`bundle ${manifest.name}: components.${component} points at ${spec.path}, which does not exist`);
    const data = externalDataFiles(file, spec.externalData);
    const sizes = await Promise.all([file, ...data].map(async (f) => (await stat(f)).size));
    files.push({ component, key: await SessionPool.key(file, component), bytes: sizes.reduce((a, b) => a + b, 0), externalData: data.length > 0 });
  }
  return { name: manifest.name, files };
}

export interface BundleLoaderOptions {
  /** Check each component against the sha256 its manifest records (default true; off for very large exports on trusted storage). */
  verifyWeights?: boolean;
  log?: (message: string, fields?: Record<string, unknown>) => void;
  /** Conditions that cost throughput or quality but still serve (a scalar-timestep UNet); defaults to `log`. */
  warn?: (message: string, fields?: Record<string, unknown>) => void;
}

/** Loads bundles through one session pool and one tokenizer cache, so shared files load (and are verified) once. */
export class BundleLoader {
  private readonly tokenizers = new Map<string, Promise<ClipTokenizer>>();
  private readonly verified = new Map<string, Promise<void>>();

  constructor(
    private readonly pool: SessionPool,
    private readonly options: BundleLoaderOptions = {},
  ) {}

  async load(dir: string): Promise<LoadedBundle> {
    const manifest = await readManifest(dir);
    // Read before any model loads, so a scheduler class stepframe lacks is refused at once.
    const scheduler = await readSchedulerConfig(resolve(dir, manifest.schedulerConfigPath), manifest.schedulerConfigPath);
    // A folder without stepframe.json samples with the scheduler its diffusers config names.
    if (manifest.synthesized && scheduler.name) manifest.defaults = { ...manifest.defaults, scheduler: scheduler.name };
    const model = async (name: ComponentName): Promise<OnnxModel | null> => {
      const spec = manifest.components[name];
      if (!spec) return null;
      const file = resolve(dir, spec.path);
      if (!existsSync(file)) throw new BundleError(`bundle ${manifest.name}: components.${name} points at ${spec.path}, which does not exist`);
      if (spec.sha256 && this.options.verifyWeights !== false) await this.verify(file, spec.sha256, `bundle ${manifest.name}: components.${name}`);
      for (const data of spec.externalData ?? []) {
        // At real size the weights are here, not in model.onnx: a flipped byte would load and serve different images.
        const dataFile = resolve(dirname(file), data.path);
        if (!existsSync(dataFile)) throw new BundleError(`bundle ${manifest.name}: components.${name}.external_data names ${data.path}, which does not exist beside ${spec.path}`);
        if (this.options.verifyWeights !== false) await this.verify(dataFile, data.sha256, `bundle ${manifest.name}: components.${name}.external_data`);
      }
      return this.pool.load(file, name, { externalData: externalDataFiles(file, spec.externalData).length > 0 });
    };
    const needsImage = manifest.fuserKind !== 'baseline';
    const unhashed = (Object.keys(manifest.components) as ComponentName[]).filter((name) => !manifest.components[name]!.sha256);
    if (this.options.verifyWeights === false) this.options.log?.('weights not verified (verification is off)', { bundle: manifest.name });
    else if (unhashed.length > 0) this.options.log?.('weights not verified: the manifest records no sha256', { bundle: manifest.name, components: unhashed });
    const [textEncoder, unet, vaeDecoder, imageEncoder, fuser] = await Promise.all([
      model('text_encoder'),
      model('unet'),
      model('vae_decoder'),
      needsImage ? model('image_encoder') : null,
      needsImage ? model('fuser') : null,
    ]);
    const bundle: LoadedBundle = {
      dir,
      manifest,
      tokenizer: await this.tokenizer(resolve(dir, manifest.tokenizerPath)),
      schedulerConfig: scheduler.config,
      imagePreprocess:
        needsImage && manifest.featureExtractorPath
          ? parsePreprocessorConfig(
              await readJson(resolve(dir, manifest.featureExtractorPath, 'preprocessor_config.json')),
              join(manifest.featureExtractorPath, 'preprocessor_config.json'),
            )
          : null,
      textEncoder: textEncoder!,
      unet: unet!,
      vaeDecoder: vaeDecoder!,
      imageEncoder,
      fuser,
    };
    checkAgreement(bundle);
    if (bundle.unet.hasInput('timestep_cond')) {
      if (bundle.unet.inputDim('timestep_cond', 1) === undefined) {
        throw new BundleError(`bundle ${manifest.name}: unet/model.onnx input 'timestep_cond' has no fixed width; export it with the UNet's time_cond_proj_dim`);
      }
      // An LCM export without stepframe.json: sample as LCM models are meant to be (few steps, embedded guidance).
      if (manifest.synthesized) manifest.defaults = { scheduler: 'lcm', numInferenceSteps: 4, guidanceScale: 8, imageGuidanceScale: 1 };
    }
    if (bundle.unet.inputRank('timestep') === 0) {
      (this.options.warn ?? this.options.log)?.(
        `the UNet takes one scalar timestep per call: concurrent sequences share its calls only at equal timesteps (about 2 rows a call instead of up to --max-batch); convert it with \`npm run convert:timestep -- ${bundle.unet.file} ${bundle.unet.file}\` (docs/model-bundle.md)`,
        { bundle: manifest.name, file: bundle.unet.file },
      );
    }
    return bundle;
  }

  /** Lets go of a bundle's models; returns those no other loaded bundle holds, now unloaded from every executor. */
  async unload(bundle: LoadedBundle): Promise<OnnxModel[]> {
    const held: [ComponentName, OnnxModel | null][] = [
      ['text_encoder', bundle.textEncoder],
      ['unet', bundle.unet],
      ['vae_decoder', bundle.vaeDecoder],
      ['image_encoder', bundle.imageEncoder],
      ['fuser', bundle.fuser],
    ];
    const unloaded: OnnxModel[] = [];
    for (const [component, model] of held) if (model && (await this.pool.release(model, component))) unloaded.push(model);
    return unloaded;
  }

  private async verify(file: string, expected: string, where: string): Promise<void> {
    const key = await realpath(file);
    let check = this.verified.get(key);
    if (!check) {
      check = verifyComponentHash(file, expected, where);
      this.verified.set(key, check);
    }
    return check;
  }

  private async tokenizer(dir: string): Promise<ClipTokenizer> {
    const key = await realpath(dir).catch(() => dir);
    let tokenizer = this.tokenizers.get(key);
    if (!tokenizer) {
      tokenizer = ClipTokenizer.load(dir);
      this.tokenizers.set(key, tokenizer);
    }
    return tokenizer;
  }
}

/** The parsed config and the stepframe scheduler its `_class_name` names (null when it names none). */
async function readSchedulerConfig(file: string, relative: string): Promise<{ config: SchedulerConfig; name: string | null }> {
  const raw = await readJson(file);
  const name = typeof raw === 'object' && raw !== null ? schedulerForConfig(raw as Record<string, unknown>, relative) : null;
  return { config: parseSchedulerConfig(raw), name };
}

/** Cross-model checks: the manifest's sizes agree with what the graphs declare. */
function checkAgreement(b: LoadedBundle): void {
  const m = b.manifest;
  const where = `bundle ${m.name}`;
  const channels = b.unet.inputDim('sample', 1);
  if (channels === 9 && m.latentChannels === 4) {
    throw new BundleError(
      `${where}: unet/model.onnx takes 9 input channels: an inpainting UNet (latents, mask and masked-image latents); stepframe generates each frame from text and the previous frame and feeds no mask. Serve a text-to-image UNet (4 channels)`,
    );
  }
  if (channels !== undefined && channels !== m.latentChannels) {
    const source = m.synthesized ? 'vae_decoder/config.json latent_channels (4 when absent)' : 'stepframe.json latent.channels';
    throw new BundleError(`${where}: unet/model.onnx input 'sample' has ${channels} channels, ${source} says ${m.latentChannels}`);
  }
  if (b.imageEncoder && !b.imageEncoder.hasOutput('pooler_output') && !b.imageEncoder.hasOutput('image_embeds')) {
    throw new BundleError(`${where}: the image encoder has neither pooler_output (CLIPVisionModel) nor image_embeds (CLIPVisionModelWithProjection)`);
  }
  const latent = m.height / m.latentDownscale;
  const height = b.unet.inputDim('sample', 2);
  if (height !== undefined && height !== latent) {
    throw new BundleError(`${where}: unet/model.onnx input 'sample' is ${height} high, the image needs ${latent} (${m.height} / ${m.latentDownscale})`);
  }
  if (b.fuser && !FUSER_INPUTS.some((name) => b.fuser!.hasInput(name))) {
    throw new BundleError(`${where}: fuser/model.onnx takes none of ${FUSER_INPUTS.join(', ')}`);
  }
  if (m.fuserKind !== 'baseline' && !b.imagePreprocess) {
    throw new BundleError(`${where}: an image-conditioned bundle needs feature_extractor/preprocessor_config.json`);
  }
}
