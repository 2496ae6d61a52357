import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import * as ort from 'onnxruntime-node';

import { type RgbImage, vaeOutputToRgb } from '../pipeline/rgbImage.js';

/**
 * A bundle's autoencoder round trip (encode, take the posterior mean, decode): the ceiling row of
 * the evaluation, and the bar the world's text probe counts against. Runs its two ONNX files
 * directly; the latents never meet the UNet, so the scaling factor cancels out.
 */
export class AutoencoderRoundTrip {
  private constructor(
    private readonly encoder: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession,
  ) {}

  static async load(bundleDir: string): Promise<AutoencoderRoundTrip> {
    const [encoderFile, decoderFile] = vaeFiles(bundleDir);
    const options = { intraOpNumThreads: 1, interOpNumThreads: 1 };
    return new AutoencoderRoundTrip(await ort.InferenceSession.create(encoderFile, options), await ort.InferenceSession.create(decoderFile, options));
  }

  async reconstruct(image: RgbImage): Promise<RgbImage> {
    const plane = image.width * image.height;
    const pixels = new Float32Array(3 * plane);
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) pixels[c * plane + p] = image.data[p * 3 + c] / 127.5 - 1;
    const outputs = await this.encoder.run({ sample: new ort.Tensor('float32', pixels, [1, 3, image.height, image.width]) });
    // stepframe's encoders return the posterior's moments (mean, then log-variance); Optimum's a sample.
    const moments = outputs.latent_parameters;
    const latent = moments
      ? new ort.Tensor('float32', (moments.data as Float32Array).slice(0, (moments.dims[1] / 2) * moments.dims[2] * moments.dims[3]), [1, moments.dims[1] / 2, moments.dims[2], moments.dims[3]])
      : outputs.latent_sample;
    if (!latent) throw new Error(`the VAE encoder returned ${Object.keys(outputs).join(', ')}; expected latent_parameters or latent_sample`);
    const { sample } = await this.decoder.run({ latent_sample: latent });
    return vaeOutputToRgb({ data: sample.data as Float32Array, dims: sample.dims });
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.release(), this.decoder.release()]);
  }
}

/** The VAE encoder and decoder files of a bundle: from its stepframe.json, or an Optimum export's folders. */
function vaeFiles(bundleDir: string): [string, string] {
  const manifest = join(bundleDir, 'stepframe.json');
  if (existsSync(manifest)) {
    const components = (JSON.parse(readFileSync(manifest, 'utf8')) as { components: Record<string, { path: string }> }).components;
    return [resolve(bundleDir, components.vae_encoder.path), resolve(bundleDir, components.vae_decoder.path)];
  }
  return [join(bundleDir, 'vae_encoder', 'model.onnx'), join(bundleDir, 'vae_decoder', 'model.onnx')];
}
