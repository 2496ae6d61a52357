/** A hand-written loop of bare `session.run` calls doing a sequence's work: the engine-overhead baseline. */
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';

import type { ExecutionSettings } from '../src/pipeline/execution/executionSettings.js';
import { BundleLoader } from '../src/pipeline/bundle/loadBundle.js';
import { SessionPool } from '../src/pipeline/bundle/sessionPool.js';
import { clipPixelValues } from '../src/pipeline/clipImagePreprocess.js';
import { combineGuidance } from '../src/pipeline/guidance.js';
import { SeededRandom } from '../src/pipeline/random.js';
import { type RgbImage, encodeImage, vaeOutputToRgb } from '../src/pipeline/rgbImage.js';
import { createScheduler } from '../src/pipeline/schedulers/index.js';
import { imageSeed } from '../src/pipeline/sequenceRequest.js';

/** The same work as the engine's loop, written directly against the sessions: no queues, no batching loop. */
export async function bareSequence(dir: string, steps: readonly string[], threads: number): Promise<() => Promise<number>> {
  const bundle = await new BundleLoader(new SessionPool(settings(threads))).load(dir);
  const sessions = {
    text: await ort.InferenceSession.create(join(dir, bundle.manifest.components.text_encoder!.path), opts(threads)),
    image: await ort.InferenceSession.create(join(dir, bundle.manifest.components.image_encoder!.path), opts(threads)),
    fuser: await ort.InferenceSession.create(join(dir, bundle.manifest.components.fuser!.path), opts(threads)),
    unet: await ort.InferenceSession.create(join(dir, bundle.manifest.components.unet!.path), opts(threads)),
    vae: await ort.InferenceSession.create(join(dir, bundle.manifest.components.vae_decoder!.path), opts(threads)),
  };
  const m = bundle.manifest;
  const latentDims = [1, m.latentChannels, m.height / m.latentDownscale, m.width / m.latentDownscale];
  const latentSize = latentDims.reduce((a, b) => a * b, 1);
  const scheduler = createScheduler('ddpm', bundle.schedulerConfig);
  const ids = (text: string) => new ort.Tensor('int64', BigInt64Array.from(bundle.tokenizer.encodePadded(text), BigInt), [1, 77]);
  return async () => {
    const t0 = performance.now();
    const uncond = await sessions.text.run({ input_ids: ids('') });
    const zeroProbe = await sessions.image.run({ pixel_values: new ort.Tensor('float32', new Float32Array(3 * m.height * m.width), [1, 3, m.height, m.width]) });
    const zeroHidden = new Float32Array((zeroProbe.last_hidden_state.data as Float32Array).length);
    let previous: RgbImage | null = null;
    for (let s = 0; s < steps.length; s++) {
      const text = await sessions.text.run({ input_ids: ids(steps[s]) });
      const imageHidden = previous
        ? ((await sessions.image.run({ pixel_values: new ort.Tensor('float32', (await clipPixelValues(previous, bundle.imagePreprocess!)).data, [1, 3, m.height, m.width]) })).last_hidden_state.data as Float32Array)
        : zeroHidden;
      const th = concat(text.last_hidden_state.data as Float32Array, uncond.last_hidden_state.data as Float32Array);
      const ih = concat(imageHidden, zeroHidden);
      const fused = await sessions.fuser.run({
        text_hidden_states: new ort.Tensor('float32', th, [2, 77, th.length / 154]),
        image_hidden_states: new ort.Tensor('float32', ih, [2, ih.length / 2 / (zeroProbe.last_hidden_state.dims[2] as number), zeroProbe.last_hidden_state.dims[2] as number]),
      });
      const random = new SeededRandom(imageSeed(1n, s));
      const run = scheduler.setTimesteps(50, random);
      let latents = random.normals(latentSize);
      for (const t of run.timesteps) {
        const out = await sessions.unet.run({
          sample: new ort.Tensor('float32', concat(latents, latents), [2, ...latentDims.slice(1)]),
          timestep: new ort.Tensor('int64', BigInt64Array.of(BigInt(t), BigInt(t)), [2]),
          encoder_hidden_states: fused.encoder_hidden_states,
        });
        latents = run.step(combineGuidance(out.out_sample.data as Float32Array, 'text', 7.5, 1), t, latents).prevSample;
      }
      const decoded = await sessions.vae.run({ latent_sample: new ort.Tensor('float32', latents.map((v) => v / m.scalingFactor), latentDims) });
      previous = vaeOutputToRgb({ data: decoded.sample.data as Float32Array, dims: decoded.sample.dims });
      await encodeImage(previous, 'png', 90);
    }
    return performance.now() - t0;
  };
}

function opts(threads: number): ort.InferenceSession.SessionOptions {
  return { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1 };
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}


function settings(threads: number): ExecutionSettings {
  return { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, mode: 'main-thread', executors: 1, cudaDeviceIds: [], log: () => undefined };
}
