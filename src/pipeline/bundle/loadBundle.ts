import { existsSync } from 'node:fs';
import { readFile, readdir, realpath } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';

import { BundleError } from '../errors.js';
import { type SchedulerConfig, parseSchedulerConfig } from '../schedulers/index.js';
import { ClipTokenizer } from '../tokenizer.js';
import { FUSER_INPUTS } from './contracts.js';
import { type BundleManifest, type ComponentName, optimumBaselineManifest, parseManifest } from './manifest.js';
import type { OnnxModel } from './onnxModel.js';
import { type ImagePreprocessConfig, parsePreprocessorConfig } from './preprocessorConfig.js';
import type { SessionPool } from './sessionPool.js';
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
  // A plain Optimum export: read the VAE's scaling factor and the UNet's sample size where diffusers wrote them.
  const vaeConfig = join(dir, 'vae_decoder', 'config.json');
  const unetConfig = join(dir, 'unet', 'config.json');
  const scaling = existsSync(vaeConfig) ? ((await readJson(vaeConfig)) as { scaling_factor?: number }).scaling_factor : undefined;
  const sampleSize = existsSync(unetConfig) ? ((await readJson(unetConfig)) as { sample_size?: number }).sample_size : undefined;
  return optimumBaselineManifest(basename(dir), scaling, sampleSize);
}

export interface BundleLoaderOptions {
  /** Check each component against the sha256 its manifest records (default true; off for very large exports on trusted storage). */
  verifyWeights?: boolean;
  log?: (message: string, fields?: Record<string, unknown>) => void;
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
    const model = async (name: ComponentName): Promise<OnnxModel | null> => {
      const spec = manifest.components[name];
      if (!spec) return null;
      const file = resolve(dir, spec.path);
      if (!existsSync(file)) throw new BundleError(`bundle ${manifest.name}: components.${name} points at ${spec.path}, which does not exist`);
      if (spec.sha256 && this.options.verifyWeights !== false) await this.verify(file, spec.sha256, `bundle ${manifest.name}: components.${name}`);
      return this.pool.load(file, name);
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
      schedulerConfig: parseSchedulerConfig(await readJson(resolve(dir, manifest.schedulerConfigPath))),
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
    return bundle;
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

/** Cross-model checks: the manifest's sizes agree with what the graphs declare. */
function checkAgreement(b: LoadedBundle): void {
  const m = b.manifest;
  const where = `bundle ${m.name}`;
  const channels = b.unet.inputDim('sample', 1);
  if (channels !== undefined && channels !== m.latentChannels) {
    throw new BundleError(`${where}: unet/model.onnx input 'sample' has ${channels} channels, stepframe.json latent.channels says ${m.latentChannels}`);
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
