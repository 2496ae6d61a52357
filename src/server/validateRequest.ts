import { randomBytes } from 'node:crypto';

import type { ModelInfo } from '../pipeline/engine.js';
import { InvalidArgumentError } from '../pipeline/errors.js';
import { fitForImageEncoder } from '../pipeline/clipImagePreprocess.js';
import { type ImageFormat, imageSize } from '../pipeline/rgbImage.js';
import { SCHEDULER_NAMES, type SchedulerName } from '../pipeline/schedulers/index.js';
import { type SequenceRequest, samplingDefaults } from '../pipeline/sequenceRequest.js';
import { ConditioningFrame, type GenerateSequenceRequest, ImageFormat as ProtoImageFormat, SamplingPreset } from '../generated/stepframe/v1/sequence_service.js';
import { quoteInput } from '../pipeline/quoteInput.js';

export interface RequestLimits {
  maxSteps: number;
  maxStepChars: number;
}

const MAX_GUIDANCE = 30;

function finiteInRange(field: string, value: number, min: number, max: number): number {
  if (!Number.isFinite(value)) throw new InvalidArgumentError(field, `must be a finite number, got ${value}`);
  if (value < min || value > max) throw new InvalidArgumentError(field, `must be in [${min}, ${max}], got ${value}`);
  return value;
}

const FORMATS: Record<number, ImageFormat> = {
  [ProtoImageFormat.IMAGE_FORMAT_UNSPECIFIED]: 'png',
  [ProtoImageFormat.IMAGE_FORMAT_PNG]: 'png',
  [ProtoImageFormat.IMAGE_FORMAT_JPEG]: 'jpeg',
  [ProtoImageFormat.IMAGE_FORMAT_WEBP]: 'webp',
};

/**
 * What each preset sets where the request leaves the field unset. FAST is DPM++ 2M at 10 steps:
 * on concatenation it scored within the 95% intervals of DDPM at 50 steps on every metric at
 * 4.9x the images per second (docs/results.md, "Quality against cost"), and so it did on
 * anchor_concatenation, the default bundle since issue 35, at 4.0x ("Beyond the paper"). The CONSISTENT presets
 * condition each frame on the first (first_frame_weight).
 */
interface PresetSettings {
  scheduler: SchedulerName;
  numInferenceSteps: number;
  firstFrameWeight?: number;
  frameStrength?: number;
}

const PRESETS: Partial<Record<SamplingPreset, PresetSettings>> = {
  [SamplingPreset.SAMPLING_PRESET_FAST]: { scheduler: 'dpmpp_2m', numInferenceSteps: 10 },
  // The paper's sampler, each frame conditioned on 0.75 of the first frame and 0.25 of the one
  // before (the weight chosen on the validation split): on the test split, style error 20.7 against
  // 36.0, 1.28× from step 2 to step 6 against 3.1×, the same text probe, 0.737 (docs/results.md).
  [SamplingPreset.SAMPLING_PRESET_CONSISTENT]: { scheduler: 'ddpm', numInferenceSteps: 50, firstFrameWeight: 0.75 },
  // Every frame conditioned on the first, at 6 DPM++ 2M steps: style error 21.6, 1.15× along the
  // sequence, text probe 0.711, at 1.2–1.4× FAST's images/s.
  [SamplingPreset.SAMPLING_PRESET_CONSISTENT_FAST]: { scheduler: 'dpmpp_2m', numInferenceSteps: 6, firstFrameWeight: 1 },
};

function samplingPreset(preset: SamplingPreset | undefined): PresetSettings | null {
  if (preset === undefined || preset === SamplingPreset.SAMPLING_PRESET_UNSPECIFIED) return null;
  const settings = PRESETS[preset];
  if (!settings) throw new InvalidArgumentError('preset', `unknown preset ${preset}; expected SAMPLING_PRESET_UNSPECIFIED, SAMPLING_PRESET_FAST, SAMPLING_PRESET_CONSISTENT or SAMPLING_PRESET_CONSISTENT_FAST`);
  return settings;
}

/** condition_on as the weight of the first frame in the conditioning embedding. */
const FIRST_FRAME_WEIGHTS: Record<number, number> = {
  [ConditioningFrame.CONDITIONING_FRAME_PREVIOUS]: 0,
  [ConditioningFrame.CONDITIONING_FRAME_FIRST]: 1,
  [ConditioningFrame.CONDITIONING_FRAME_FIRST_AND_PREVIOUS]: 0.5,
};

/**
 * Turns a proto request into the engine's validated type, once, at the edge. Every error is an
 * INVALID_ARGUMENT naming the field and what it allows. `model` resolves the bundle (and throws
 * for an unknown name).
 */
export async function parseGenerateRequest(req: GenerateSequenceRequest, limits: RequestLimits, model: (name: string) => ModelInfo): Promise<SequenceRequest> {
  const steps = req.steps ?? [];
  if (steps.length === 0) throw new InvalidArgumentError('steps', 'at least one step is required');
  if (steps.length > limits.maxSteps) throw new InvalidArgumentError('steps', `at most ${limits.maxSteps} steps per request, got ${steps.length}`);
  steps.forEach((text, i) => {
    if (text.trim() === '') throw new InvalidArgumentError(`steps[${i}]`, 'must not be empty');
    if (text.length > limits.maxStepChars) throw new InvalidArgumentError(`steps[${i}]`, `must be at most ${limits.maxStepChars} characters, got ${text.length}`);
  });
  if (req.negativePrompt.length > limits.maxStepChars) {
    throw new InvalidArgumentError('negative_prompt', `must be at most ${limits.maxStepChars} characters, got ${req.negativePrompt.length}`);
  }

  const info = model(req.model);
  const defaults = samplingDefaults(info);
  const preset = samplingPreset(req.preset);
  const scheduler = req.scheduler || preset?.scheduler || defaults.scheduler;
  if (!(SCHEDULER_NAMES as readonly string[]).includes(scheduler)) {
    throw new InvalidArgumentError('scheduler', `unknown scheduler ${quoteInput(scheduler)}; expected one of ${SCHEDULER_NAMES.join(', ')}`);
  }
  for (const [field, value, size] of [['width', req.width, info.width], ['height', req.height, info.height]] as const) {
    if (value !== 0 && value !== size) throw new InvalidArgumentError(field, `model ${info.name} generates ${info.width}x${info.height}; set ${field} to 0 or ${size}, got ${value}`);
  }
  const numInferenceSteps = req.numInferenceSteps || preset?.numInferenceSteps || defaults.numInferenceSteps;
  if (numInferenceSteps > 1000) throw new InvalidArgumentError('num_inference_steps', `must be in [1, 1000], got ${numInferenceSteps}`);

  const guidanceScale = req.guidanceScale === undefined ? defaults.guidanceScale : finiteInRange('guidance_scale', req.guidanceScale, 0, MAX_GUIDANCE);
  let imageGuidanceScale = defaults.imageGuidanceScale;
  if (req.imageGuidanceScale !== undefined) {
    imageGuidanceScale = finiteInRange('image_guidance_scale', req.imageGuidanceScale, 0, MAX_GUIDANCE);
    if (!info.imageGuidance) throw new InvalidArgumentError('image_guidance_scale', `model ${info.name} does not support a separate image guidance scale`);
  }
  const eta = req.eta === undefined ? 0 : finiteInRange('eta', req.eta, 0, 1);
  const frameStrength = req.frameStrength === undefined ? preset?.frameStrength ?? 1 : finiteInRange('frame_strength', req.frameStrength, 0, 1);
  if (frameStrength === 0) throw new InvalidArgumentError('frame_strength', 'must be in (0, 1], got 0, which would run no step; leave it unset (or 1) to start every image from noise');

  const format = FORMATS[req.outputFormat];
  if (!format) throw new InvalidArgumentError('output_format', `unknown format ${req.outputFormat}`);
  const quality = req.outputQuality === 0 ? 90 : req.outputQuality;
  if (quality > 100) throw new InvalidArgumentError('output_quality', `must be in [1, 100], got ${quality}`);

  // Only what the image encoder reads is kept (resized and cropped here, once); a bundle without one ignores the image.
  let initImage = null;
  if (req.initImage.length > 0) {
    if (info.imagePreprocess) initImage = await fitForImageEncoder(req.initImage, info.imagePreprocess, 'init_image');
    else await imageSize(req.initImage, 'init_image');
  }
  return {
    model: info.name,
    steps,
    seed: req.seed ?? randomBytes(8).readBigUInt64BE(),
    numInferenceSteps,
    guidanceScale,
    imageGuidanceScale,
    scheduler: scheduler as SchedulerName,
    eta,
    negativePrompt: req.negativePrompt,
    format,
    quality,
    initImage,
    frameStrength,
    firstFrameWeight: req.firstFrameWeight === undefined ? firstFrameWeight(req.conditionOn, preset) : finiteInRange('first_frame_weight', req.firstFrameWeight, 0, 1),
  };
}

/** The request's condition_on, else the preset's, else the paper's (the previous frame), as the first frame's weight. */
function firstFrameWeight(field: ConditioningFrame | undefined, preset: PresetSettings | null): number {
  if (field === undefined || field === ConditioningFrame.CONDITIONING_FRAME_UNSPECIFIED) return preset?.firstFrameWeight ?? 0;
  const value = FIRST_FRAME_WEIGHTS[field];
  if (value === undefined) throw new InvalidArgumentError('condition_on', `unknown value ${field}; expected CONDITIONING_FRAME_PREVIOUS, CONDITIONING_FRAME_FIRST or CONDITIONING_FRAME_FIRST_AND_PREVIOUS`);
  return value;
}
