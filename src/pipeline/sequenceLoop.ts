import type { Feed, Feeds } from './batching/feeds.js';
import { type ImageEmbedding, BundleRuntime } from './bundleRuntime.js';
import { clipPixelValues } from './clipImagePreprocess.js';
import { throwIfAborted } from './errors.js';
import { type GuidanceMode, combineGuidance, guidanceRows } from './guidance.js';
import { guidanceScaleEmbedding } from './guidanceEmbedding.js';
import { SeededRandom } from './random.js';
import { MIME_TYPES, type RgbImage, encodeImage, vaeOutputToRgb } from './rgbImage.js';
import type { SchedulerRun } from './schedulers/index.js';
import { type SequenceHooks, type SequenceRequest, type StageTimings, type StepImage, imageSeed } from './sequenceRequest.js';
import { type Tensor, concatBatch, cosineSimilarity, repeatBatch } from './tensor.js';
import { noisedLatents, warmStartSteps } from './warmStart.js';

interface TextEmbedding {
  hidden: Tensor;
  pooled: Tensor;
}

/** Which guidance rows a request gets from this bundle. */
export function guidanceMode(runtime: BundleRuntime, request: SequenceRequest): GuidanceMode {
  // An LCM UNet takes the guidance scale as an embedding: one row, no unconditional branch.
  if (request.guidanceScale <= 1 || runtime.guidanceEmbeddingWidth !== null) return 'none';
  const m = runtime.bundle.manifest;
  if (!m.imageGuidance || m.fuserKind === 'baseline' || request.imageGuidanceScale === null) return 'text';
  // At image scale 1 the ∅ ⊕ ∅ row has weight 0 (guidance.ts): leave it out.
  return request.imageGuidanceScale === 1 ? 'text_given_image' : 'text_and_image';
}

/**
 * The paper's loop, one image per step: encode the step text, encode the previous image, fuse,
 * denoise from seeded noise, decode, and feed the decoded frame back into the next step. Each
 * frame is encoded once, right after decoding: the embedding conditions the next frame and scores
 * its similarity to the one before. With frame_strength < 1 every frame after the first starts
 * from the previous frame's latents, noised partway, and runs only the rest of the schedule.
 */
export async function* runSequence(runtime: BundleRuntime, request: SequenceRequest, hooks: SequenceHooks = {}): AsyncGenerator<StepImage> {
  const { signal } = hooks;
  const mode = guidanceMode(runtime, request);
  const scheduler = runtime.scheduler(request.scheduler);
  const imageConditioned = runtime.fuser !== null;
  const unconditionalText = mode === 'none' ? null : await encodeStepText(runtime, request.negativePrompt, hooks);
  // The image embedding the next frame is conditioned on: the init image's, the bundle's "no previous image", then each frame's own.
  let previousEmbedding: ImageEmbedding | null = null;
  // The sequence's first frame (the init image, else the first image generated): with conditionOn 'first' every frame is conditioned on it.
  let firstEmbedding: ImageEmbedding | null = null;
  let previousLatents: Float32Array | null = null;

  for (let stepIndex = 0; stepIndex < request.steps.length; stepIndex++) {
    throwIfAborted(signal);
    const timings: StageTimings = { textEncodeMs: 0, imageEncodeMs: 0, fuseMs: 0, denoiseMs: 0, decodeMs: 0, encodeMs: 0, totalMs: 0 };
    const started = performance.now();
    const timed = async <T>(stage: keyof StageTimings, work: () => Promise<T>): Promise<T> => {
      const t0 = performance.now();
      try {
        return await work();
      } finally {
        const t1 = performance.now();
        timings[stage] += t1 - t0;
        hooks.onStage?.(stepIndex, stage, t0, t1);
      }
    };

    // 1. Encode the step's text.
    const text = await timed('textEncodeMs', () => encodeStepText(runtime, request.steps[stepIndex], hooks));
    // 2. The previous image's embedding (the first step encodes the init image, or takes the bundle's "no previous image").
    if (imageConditioned && stepIndex === 0) {
      previousEmbedding = await timed('imageEncodeMs', () => embedImage(runtime, request.initImage, hooks));
      if (request.initImage) firstEmbedding = previousEmbedding;
    }
    const image: ImageEmbedding | null = conditioningImage(request.firstFrameWeight, firstEmbedding, previousEmbedding);
    // 3. Fuse text and image into the UNet's conditioning, one row per guidance branch.
    // A first-frame fuser also sees the first frame; before there is one (the first image, no init image) it gets this image's conditioning frame.
    const first: ImageEmbedding | null = firstEmbedding ?? image;
    const conditioning: Tensor = await timed('fuseMs', () => fuseConditioning(runtime, mode, text, unconditionalText, image, first, hooks));
    // 4. Seeded initial latents: noise, or (warm start) the previous frame's latents noised partway.
    const seed = imageSeed(request.seed, stepIndex);
    const random = new SeededRandom(seed);
    const run = scheduler.setTimesteps(request.numInferenceSteps, random, { eta: request.eta });
    const { latents, firstStep } = initialLatents(runtime, run, random, previousLatents, request.frameStrength);
    // 5. Denoise with classifier-free guidance.
    const denoised: Float32Array = await timed('denoiseMs', () => denoise(runtime, request, mode, run, firstStep, latents, conditioning, stepIndex, hooks));
    // 6. Decode to pixels.
    const rgb: RgbImage = await timed('decodeMs', () => decodeLatents(runtime, denoised, hooks));
    // 7. Encode the frame for the next step's conditioning (and, for free, its similarity to the previous frame).
    const embedding: ImageEmbedding | null = imageConditioned ? await timed<ImageEmbedding>('imageEncodeMs', () => embedImage(runtime, rgb, hooks)) : null;
    const previousFrameSimilarity = embedding && previousEmbedding && (stepIndex > 0 || request.initImage) ? cosineSimilarity(embedding.pooled.data, previousEmbedding.pooled.data) : null;
    const bytes = await timed('encodeMs', () => encodeImage(rgb, request.format, request.quality));
    timings.totalMs = performance.now() - started;
    previousEmbedding = embedding;
    firstEmbedding ??= embedding;
    previousLatents = denoised;
    yield {
      stepIndex,
      text: request.steps[stepIndex],
      bytes,
      mimeType: MIME_TYPES[request.format],
      width: rgb.width,
      height: rgb.height,
      seed,
      timings,
      rgb,
      previousFrameSimilarity,
    };
  }
}

/** The embedding a frame is conditioned on: the previous frame's, the first frame's, or their mean weighted by `firstWeight`. */
export function conditioningImage(firstWeight: number, first: ImageEmbedding | null, previous: ImageEmbedding | null): ImageEmbedding | null {
  if (!first || !previous || firstWeight === 0) return previous;
  if (firstWeight === 1) return first;
  const mix = (a: Tensor, b: Tensor): Tensor => ({ data: a.data.map((v, i) => firstWeight * v + (1 - firstWeight) * b.data[i]), dims: a.dims });
  return { hidden: mix(first.hidden, previous.hidden), pooled: mix(first.pooled, previous.pooled) };
}

async function encodeStepText(runtime: BundleRuntime, text: string, hooks: SequenceHooks): Promise<TextEmbedding> {
  const ids = runtime.bundle.tokenizer.encodePadded(text);
  const feed: Feed = { type: 'int64', data: BigInt64Array.from(ids, BigInt), dims: [1, ids.length] };
  const out = await runtime.textEncoder.run({ feeds: { input_ids: feed }, rows: 1, signal: hooks.signal, trace: hooks.trace });
  const hidden = out.last_hidden_state;
  // Optimum text encoders without pooler_output: pool at EOS (the first id that is the EOS id), as CLIP does.
  const pooled = out.pooler_output ?? poolAt(hidden, ids.indexOf(runtime.bundle.tokenizer.eosId));
  return { hidden, pooled };
}

function poolAt(hidden: Tensor, position: number): Tensor {
  const width = hidden.dims[2];
  return { data: hidden.data.slice(position * width, (position + 1) * width), dims: [1, width] };
}

/** The image encoder's embedding of `image`, or the bundle's "no previous image" for null. */
async function embedImage(runtime: BundleRuntime, image: RgbImage | null, hooks: SequenceHooks): Promise<ImageEmbedding> {
  if (!image) return runtime.noImage();
  const pixels = await clipPixelValues(image, runtime.bundle.imagePreprocess!);
  const out = await runtime.imageEncoder!.run({
    feeds: { pixel_values: { type: 'float32', data: pixels.data, dims: pixels.dims } },
    rows: 1,
    signal: hooks.signal,
    trace: hooks.trace,
  });
  return { hidden: out.last_hidden_state, pooled: out[runtime.pooledImageOutput] };
}

/**
 * Per guidance mode, the rows of one UNet call: each true row gets the step's text and the image,
 * each false row ∅ text and ∅ image; the rows after the first get ∅ text either way.
 */
const ROWS_WITH_IMAGE: Record<GuidanceMode, readonly boolean[]> = {
  none: [true],
  text: [true, false],
  text_given_image: [true, true],
  text_and_image: [true, true, false],
};

/**
 * Rows: [text ⊕ image] without guidance; [text ⊕ image, ∅ ⊕ ∅] with one scale;
 * [text ⊕ image, ∅ ⊕ image, ∅ ⊕ ∅] with separate text and image scales, and its first two rows
 * alone when the image scale is 1. ∅ text is the negative (by default empty) prompt; ∅ image is
 * the bundle's zero embedding. A fuser that also takes the first frame gets it in the rows that
 * get the image, and ∅ with ∅ image, as it was trained (the first frame is dropped with the
 * previous one).
 */
async function fuseConditioning(
  runtime: BundleRuntime,
  mode: GuidanceMode,
  text: TextEmbedding,
  unconditionalText: TextEmbedding | null,
  image: ImageEmbedding | null,
  first: ImageEmbedding | null,
  hooks: SequenceHooks,
): Promise<Tensor> {
  const rows = ROWS_WITH_IMAGE[mode];
  const texts = rows.map((_, row) => (row === 0 ? text : unconditionalText!));
  if (!runtime.fuser || !image) return concatBatch(texts.map((t) => t.hidden));

  const zero = await runtime.noImage();
  const images = rows.map((withImage) => (withImage ? image : zero));
  const firsts = rows.map((withImage) => (withImage ? (first ?? image) : zero));
  const inputs: Record<string, () => Tensor> = {
    text_hidden_states: () => concatBatch(texts.map((t) => t.hidden)),
    text_pooled: () => concatBatch(texts.map((t) => t.pooled)),
    image_hidden_states: () => concatBatch(images.map((i) => i.hidden)),
    image_pooled: () => concatBatch(images.map((i) => i.pooled)),
    first_image_hidden_states: () => concatBatch(firsts.map((i) => i.hidden)),
    first_image_pooled: () => concatBatch(firsts.map((i) => i.pooled)),
  };
  const feeds: Feeds = {};
  for (const [name, input] of Object.entries(inputs)) {
    // Exporters drop fuser inputs the model ignores; build and feed only the ones it declares.
    if (!runtime.bundle.fuser!.hasInput(name)) continue;
    const t = input();
    feeds[name] = { type: 'float32', data: t.data, dims: t.dims };
  }
  const out = await runtime.fuser.run({ feeds, rows: texts.length, signal: hooks.signal, trace: hooks.trace });
  return out.encoder_hidden_states;
}

/**
 * x_T ~ N(0, I) scaled by the scheduler's initial sigma, drawn from the image's own generator; or,
 * for a warm start, the previous frame's latents noised with that same draw to the level of the
 * step the run now starts at (the request's strength was checked against the run at admission).
 */
function initialLatents(runtime: BundleRuntime, run: SchedulerRun, random: SeededRandom, previous: Float32Array | null, frameStrength: number): { latents: Float32Array; firstStep: number } {
  const size = runtime.latentDims().reduce((a, b) => a * b, 1);
  const noise = random.normals(size);
  if (previous && frameStrength < 1) {
    const firstStep = run.timesteps.length - warmStartSteps(run.timesteps.length, frameStrength);
    run.startAt(firstStep);
    return { latents: noisedLatents(run.noiseLevel(firstStep)!, previous, noise), firstStep };
  }
  if (run.initNoiseSigma !== 1) for (let i = 0; i < size; i++) noise[i] *= run.initNoiseSigma;
  return { latents: noise, firstStep: 0 };
}

async function denoise(
  runtime: BundleRuntime,
  request: SequenceRequest,
  mode: GuidanceMode,
  run: SchedulerRun,
  firstStep: number,
  initial: Float32Array,
  conditioning: Tensor,
  stepIndex: number,
  hooks: SequenceHooks,
): Promise<Float32Array> {
  const rows = guidanceRows(mode);
  const dims = runtime.latentDims();
  const guidanceEmbedding = runtime.guidanceEmbeddingWidth === null ? null : guidanceScaleEmbedding(request.guidanceScale, runtime.guidanceEmbeddingWidth);
  let latents = initial;
  const leave = runtime.unet.join();
  try {
    for (let i = firstStep; i < run.timesteps.length; i++) {
      throwIfAborted(hooks.signal);
      const t = run.timesteps[i];
      const modelInput = run.scaleModelInput(latents, t);
      const sample = repeatBatch({ data: modelInput, dims }, rows);
      const out = await runtime.unet.run({
        feeds: {
          sample: { type: 'float32', data: sample.data, dims: sample.dims },
          timestep: timestepFeed(runtime, t, rows),
          encoder_hidden_states: { type: 'float32', data: conditioning.data, dims: conditioning.dims },
          ...(guidanceEmbedding ? { timestep_cond: { type: 'float32', data: guidanceEmbedding, dims: [1, guidanceEmbedding.length] } } : {}),
        },
        rows,
        signal: hooks.signal,
        groupKey: runtime.scalarTimestep ? t : undefined,
        trace: hooks.trace,
      });
      const noisePrediction = combineGuidance(out.out_sample.data, mode, request.guidanceScale, request.imageGuidanceScale ?? 1);
      latents = run.step(noisePrediction, t, latents).prevSample;
      hooks.onProgress?.({ stepIndex, denoiseStep: i + 1 - firstStep, denoiseSteps: run.timesteps.length - firstStep });
    }
  } finally {
    leave();
  }
  return latents;
}

/** One timestep per row ([B]), or a scalar for UNets exported with a single timestep. */
function timestepFeed(runtime: BundleRuntime, t: number, rows: number): Feed {
  const dims = runtime.scalarTimestep ? [] : [rows];
  const count = runtime.scalarTimestep ? 1 : rows;
  // Integer UNets get the rounded timestep (Euler's linspace timesteps are fractional).
  return runtime.timestepType === 'int64'
    ? { type: 'int64', data: new BigInt64Array(count).fill(BigInt(Math.round(t))), dims }
    : { type: 'float32', data: new Float32Array(count).fill(t), dims };
}

async function decodeLatents(runtime: BundleRuntime, latents: Float32Array, hooks: SequenceHooks): Promise<RgbImage> {
  const scale = 1 / runtime.bundle.manifest.scalingFactor;
  const scaled = latents.map((v) => v * scale);
  const out = await runtime.vaeDecoder.run({
    feeds: { latent_sample: { type: 'float32', data: scaled, dims: runtime.latentDims() } },
    rows: 1,
    signal: hooks.signal,
    trace: hooks.trace,
  });
  return vaeOutputToRgb(out.sample);
}
