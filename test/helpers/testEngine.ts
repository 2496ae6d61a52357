import { Engine, type EngineOptions } from '../../src/pipeline/engine.js';
import type { SequenceRequest, StepImage } from '../../src/pipeline/sequenceRequest.js';
import { TEST_SESSION_SETTINGS } from './engineSettings.js';
import { FIXTURE_BUNDLES } from './paths.js';

/** An engine over the random-weight fixture bundles with small, test-friendly limits. */
export function createTestEngine(overrides: Partial<EngineOptions> = {}): Promise<Engine> {
  return Engine.create({
    modelsDir: FIXTURE_BUNDLES,
    defaultModel: 'attend_to_image',
    session: TEST_SESSION_SETTINGS,
    batch: { maxBatch: 12, maxQueueDelayMs: 5 },
    admission: { maxActiveSequences: 8, maxQueuedSequences: 8 },
    ...overrides,
  });
}

export function sequenceRequest(overrides: Partial<SequenceRequest> = {}): SequenceRequest {
  return {
    model: 'attend_to_image',
    steps: ['chop the carrots', 'add the carrots to the pan', 'stir everything together'],
    seed: 42n,
    numInferenceSteps: 4,
    guidanceScale: 7.5,
    imageGuidanceScale: null,
    scheduler: 'ddpm',
    eta: 0,
    negativePrompt: '',
    format: 'png',
    quality: 90,
    initImage: null,
    frameStrength: 1,
    firstFrameWeight: 0,
    ...overrides,
  };
}

export async function collect(images: AsyncIterable<StepImage>): Promise<StepImage[]> {
  const all: StepImage[] = [];
  for await (const image of images) all.push(image);
  return all;
}

/** PSNR in dB between two equally sized 8-bit images; Infinity when identical. */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
  return sum === 0 ? Infinity : 10 * Math.log10((255 * 255) / (sum / a.length));
}
