import type { RgbImage, ImageFormat } from './rgbImage.js';
import type { ModelInfo } from './engine.js';
import type { SchedulerName } from './schedulers/index.js';

/** A validated request: the server builds it from the proto, the engine trusts its types. */
export interface SequenceRequest {
  model: string;
  /** Step texts in order; one image each. */
  steps: string[];
  seed: bigint;
  numInferenceSteps: number;
  /** Text guidance scale s; ≤ 1 disables classifier-free guidance. */
  guidanceScale: number;
  /** Image guidance scale s_I; null uses two-row guidance even where the bundle supports three. */
  imageGuidanceScale: number | null;
  scheduler: SchedulerName;
  /** DDIM's η; ignored by the other schedulers. */
  eta: number;
  /** Replaces the empty prompt in the unconditional rows. */
  negativePrompt: string;
  format: ImageFormat;
  /** 1-100, for JPEG and WebP. */
  quality: number;
  /** Conditions the first step instead of the bundle's "no previous image" input. */
  initImage: RgbImage | null;
  /** Warm start in (0, 1]: later frames start from the previous frame's latents noised to this strength; 1 starts each from noise. */
  frameStrength: number;
  /**
   * How much of the sequence's first frame (the init image, else the first image generated)
   * conditions each image after the first, in [0, 1]: 0 is the frame just before (the paper's
   * method), 1 the first frame throughout; between, the weighted mean of the two embeddings.
   */
  firstFrameWeight: number;
}

/** Milliseconds spent in each stage of one image. */
export interface StageTimings {
  textEncodeMs: number;
  imageEncodeMs: number;
  fuseMs: number;
  denoiseMs: number;
  decodeMs: number;
  encodeMs: number;
  totalMs: number;
}

export interface StepImage {
  stepIndex: number;
  text: string;
  bytes: Buffer;
  mimeType: string;
  width: number;
  height: number;
  /** The seed of this image's noise, derived from the request seed and the step index. */
  seed: bigint;
  timings: StageTimings;
  rgb: RgbImage;
  /** Cosine similarity of this frame's pooled image embedding to the previous frame's (the init image's for the first); null where there is none. */
  previousFrameSimilarity: number | null;
}

export interface DenoiseProgress {
  stepIndex: number;
  /** 1-based denoising step just finished. */
  denoiseStep: number;
  denoiseSteps: number;
}

/** Per-sequence hooks; progress is a callback, so a slow consumer never stalls a batch. */
export interface SequenceHooks {
  signal?: AbortSignal;
  onProgress?: (progress: DenoiseProgress) => void;
  /** Opaque value passed to batch observers (the request's span context). */
  trace?: unknown;
  /** Called after each stage of each image with its start and end (performance.now() milliseconds). */
  onStage?: (stepIndex: number, stage: keyof StageTimings, startMs: number, endMs: number) => void;
  /**
   * Asked after each image: null when the reader can take another image now, else a promise that
   * settles when it can (or rejects, for a reader stalled too long). While it is pending the
   * sequence gives its generation slot back and then queues for one again, at the head of the queue.
   */
  readerReady?: () => Promise<void> | null;
}

/** Derives each image's seed so any image can be regenerated from (seed, step index) and its previous image. */
export function imageSeed(seed: bigint, stepIndex: number): bigint {
  return BigInt.asUintN(64, seed + BigInt(stepIndex) * 0x9e3779b97f4a7c15n);
}

export type SamplingDefaults = Pick<SequenceRequest, 'scheduler' | 'numInferenceSteps' | 'guidanceScale' | 'imageGuidanceScale'>;

/**
 * What a request that leaves the sampling fields unset gets from `info`'s bundle. On a model with
 * three-row guidance that includes its image guidance scale, the setting its quality figures are
 * measured at (two-row guidance there scored half the text probe; docs/experiments.md, "Execution").
 */
export function samplingDefaults(info: ModelInfo): SamplingDefaults {
  return {
    scheduler: info.defaults.scheduler as SchedulerName, // checked against SCHEDULER_NAMES where it is used
    numInferenceSteps: info.defaults.numInferenceSteps,
    guidanceScale: info.defaults.guidanceScale,
    imageGuidanceScale: info.imageGuidance ? info.defaults.imageGuidanceScale : null,
  };
}
