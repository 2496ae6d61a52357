import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { Engine, ModelInfo } from '../pipeline/engine.js';
import { encodeImage, type RgbImage } from '../pipeline/rgbImage.js';
import type { SchedulerName } from '../pipeline/schedulers/index.js';
import { type SamplingDefaults, type SequenceRequest, samplingDefaults } from '../pipeline/sequenceRequest.js';
import type { AutoencoderRoundTrip } from './autoencoderRoundTrip.js';
import { cosineSimilarity } from '../pipeline/tensor.js';
import type { EvaluationEncoder } from './evaluationEncoder.js';
import { psnr, ssim } from './imageMetrics.js';
import { type EvalRecipe, type EvalSplit, referenceImage } from './testSplit.js';

/** How a row samples: a bundle's own defaults, or a scheduler, step count and text guidance. */
export interface SamplingSetting {
  name: string;
  scheduler?: SchedulerName;
  numInferenceSteps?: number;
  guidanceScale?: number;
  /** Image guidance; unset: the bundle's own. */
  imageGuidanceScale?: number;
  /** Warm start (frame_strength) in (0, 1]; unset: 1, every frame from noise. */
  frameStrength?: number;
  /** The first frame's weight in each frame's conditioning (unset: 0, the frame before). */
  firstFrameWeight?: number;
}

/** What every request of a row samples with. */
type RowSampling = SamplingDefaults & { frameStrength: number; firstFrameWeight: number };

/** One scored frame: step `position` (1 = the first generated step) of recipe `recipe`. */
export interface FrameScores {
  recipe: string;
  position: number;
  image: string;
  psnr: number;
  ssim: number;
  /** 1 − cosine similarity to the reference frame in the evaluation encoder. */
  clipScore: number;
  /** Cosine similarity to the generated frame before it (CLIP-I); absent for the first generated frame. */
  clipI?: number;
  /** The world's scores, filled in by worldScores.ts where the split is the world's. */
  styleError?: number;
  textProbe?: boolean | null;
  textProbeShowable?: boolean | null;
}

export interface RowResult {
  row: string;
  bundle: string | null;
  setting: string | null;
  /** The settings each request used, as the engine resolved them. */
  sampling: Record<string, unknown> | null;
  framesDir: string;
  frames: FrameScores[];
  /** Generated images per second through the engine over the whole row (null for the reference rows). */
  imagesPerSecond: number | null;
  wallSeconds: number | null;
}

export interface EvalContext {
  engine: Engine;
  split: EvalSplit;
  encoder: EvaluationEncoder;
  outDir: string;
  /** Request seed of every sequence, recorded in the results. */
  seed: bigint;
  concurrency: number;
  progress: (line: string) => void;
}

interface LoadedRecipe {
  recipe: EvalRecipe;
  references: RgbImage[];
  embeddings: Float32Array[];
}

/**
 * The protocol of the world's evaluation, through the engine: each recipe's first reference frame
 * is given as init_image, as a user continuing a sequence would pass it; steps 2..n are generated,
 * each conditioned on the previous generated frame, and every generated frame is scored against its
 * reference.
 */
export class Evaluation {
  private loaded: LoadedRecipe[] | null = null;

  constructor(private readonly ctx: EvalContext) {}

  private async recipes(): Promise<LoadedRecipe[]> {
    if (this.loaded) return this.loaded;
    const loaded: LoadedRecipe[] = [];
    for (const recipe of this.ctx.split.recipes) {
      const references = await Promise.all(recipe.steps.map((s) => referenceImage(this.ctx.split, s.image)));
      loaded.push({ recipe, references, embeddings: await this.ctx.encoder.embed(references) });
    }
    this.loaded = loaded;
    return loaded;
  }

  /** One bundle under one sampling setting: every recipe through the engine, `concurrency` at a time. */
  async generatedRow(info: ModelInfo, setting: SamplingSetting): Promise<RowResult> {
    const row = `${info.name} @ ${setting.name}`;
    const recipes = await this.recipes();
    const framesDir = join(this.ctx.outDir, 'frames', slug(row));
    await mkdir(framesDir, { recursive: true });
    const sampling = resolveSampling(info, setting);
    const perRecipe: FrameScores[][] = new Array(recipes.length);
    let next = 0;
    let done = 0;
    const started = performance.now();
    const worker = async () => {
      while (next < recipes.length) {
        const index = next++;
        perRecipe[index] = await this.generateRecipe(info, sampling, recipes[index], framesDir);
        done++;
        if (done % 8 === 0 || done === recipes.length) this.ctx.progress(`${row}: ${done}/${recipes.length} recipes (${((performance.now() - started) / 1000).toFixed(0)} s)`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.ctx.concurrency, recipes.length) }, worker));
    const wallSeconds = (performance.now() - started) / 1000;
    const frames = perRecipe.flat();
    return { row, bundle: info.name, setting: setting.name, sampling: { ...sampling, seed: String(this.ctx.seed) }, framesDir, frames, imagesPerSecond: frames.length / wallSeconds, wallSeconds };
  }

  private async generateRecipe(info: ModelInfo, sampling: RowSampling, loaded: LoadedRecipe, framesDir: string): Promise<FrameScores[]> {
    const { recipe, references } = loaded;
    const request: SequenceRequest = {
      model: info.name,
      steps: recipe.steps.slice(1).map((s) => s.text),
      seed: this.ctx.seed,
      numInferenceSteps: sampling.numInferenceSteps,
      guidanceScale: sampling.guidanceScale,
      imageGuidanceScale: sampling.imageGuidanceScale,
      scheduler: sampling.scheduler,
      eta: 0,
      negativePrompt: '',
      format: 'png',
      quality: 90,
      initImage: references[0],
      frameStrength: sampling.frameStrength,
      firstFrameWeight: sampling.firstFrameWeight,
    };
    const generated: RgbImage[] = [];
    for await (const image of this.ctx.engine.generate(request)) {
      generated.push(image.rgb);
      await writeFile(join(framesDir, recipe.steps[image.stepIndex + 1].image), image.bytes);
    }
    return this.score(loaded, generated);
  }

  /**
   * The reference rows: "copy the previous frame" (the floor: perfect style, no new content) and
   * "autoencoder reconstruction" (the ceiling: the best any latent model of this autoencoder can do).
   */
  async referenceRows(roundTrip: AutoencoderRoundTrip): Promise<RowResult[]> {
    const recipes = await this.recipes();
    const rows: RowResult[] = [];
    for (const [row, candidates] of [
      ['copy the previous frame', (l: LoadedRecipe) => Promise.resolve(l.references.slice(0, -1))],
      ['autoencoder reconstruction', (l: LoadedRecipe) => Promise.all(l.references.slice(1).map((r) => roundTrip.reconstruct(r)))],
    ] as const) {
      const framesDir = join(this.ctx.outDir, 'frames', slug(row));
      await mkdir(framesDir, { recursive: true });
      const frames: FrameScores[] = [];
      for (const loaded of recipes) {
        const images = await candidates(loaded);
        await Promise.all(images.map(async (image, i) => writeFile(join(framesDir, loaded.recipe.steps[i + 1].image), await encodeImage(image, 'png', 90))));
        frames.push(...(await this.score(loaded, images)));
      }
      rows.push({ row, bundle: null, setting: null, sampling: null, framesDir, frames, imagesPerSecond: null, wallSeconds: null });
    }
    // The first step's reconstruction too: the world's text probe counts generated frames against it.
    const reconDir = join(this.ctx.outDir, 'frames', slug('autoencoder reconstruction'));
    for (const loaded of recipes) await writeFile(join(reconDir, loaded.recipe.steps[0].image), await encodeImage(await roundTrip.reconstruct(loaded.references[0]), 'png', 90));
    return rows;
  }

  /** `candidates[i]` stands for step i + 1 of the recipe (the first step is given). */
  private async score(loaded: LoadedRecipe, candidates: RgbImage[]): Promise<FrameScores[]> {
    const { recipe, references, embeddings } = loaded;
    const embedded = await this.ctx.encoder.embed(candidates);
    return candidates.map((image, i) => ({
      recipe: recipe.id,
      position: i + 1,
      image: recipe.steps[i + 1].image,
      psnr: psnr(image, references[i + 1]),
      ssim: ssim(image, references[i + 1]),
      clipScore: 1 - cosineSimilarity(embedded[i], embeddings[i + 1]),
      ...(i > 0 ? { clipI: cosineSimilarity(embedded[i], embedded[i - 1]) } : {}),
    }));
  }
}

/** What a setting means for one bundle: its fields over the bundle's defaults (image guidance only where the bundle has it). */
function resolveSampling(info: ModelInfo, setting: SamplingSetting): RowSampling {
  const defaults = samplingDefaults(info);
  return {
    ...defaults,
    scheduler: setting.scheduler ?? defaults.scheduler,
    numInferenceSteps: setting.numInferenceSteps ?? defaults.numInferenceSteps,
    guidanceScale: setting.guidanceScale ?? defaults.guidanceScale,
    imageGuidanceScale: defaults.imageGuidanceScale === null ? null : (setting.imageGuidanceScale ?? defaults.imageGuidanceScale),
    frameStrength: setting.frameStrength ?? 1,
    firstFrameWeight: setting.firstFrameWeight ?? 0,
  };
}

export function slug(row: string): string {
  return row.replace(/[^a-z0-9]+/gi, '_').replace(/^_|_$/g, '').toLowerCase();
}
