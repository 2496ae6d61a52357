import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';

import { clipPixelValues } from '../pipeline/clipImagePreprocess.js';
import type { RgbImage } from '../pipeline/rgbImage.js';

/**
 * The evaluation's own image encoder (models/evaluation: trained by
 * training/stepframe_train/evaluation/train_encoder.py, used by no bundle). Its embeddings are unit
 * vectors; the CLIP comparison score is 1 − their cosine similarity.
 */
export class EvaluationEncoder {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly size: number,
    private readonly mean: [number, number, number],
    private readonly std: [number, number, number],
    readonly description: Record<string, unknown>,
  ) {}

  static async load(dir: string): Promise<EvaluationEncoder> {
    const file = join(dir, 'encoder.json');
    let description: { input?: { size?: number; image_mean?: number[]; image_std?: number[] } };
    try {
      description = JSON.parse(await readFile(file, 'utf8'));
    } catch (error) {
      throw new Error(`${file}: ${(error as Error).message} (train it: cd training && /usr/bin/python3 -m stepframe_train.evaluation.train_encoder --out ../models/evaluation)`);
    }
    const input = description.input ?? {};
    if (typeof input.size !== 'number' || input.image_mean?.length !== 3 || input.image_std?.length !== 3) throw new Error(`${file}: input.size, input.image_mean and input.image_std are required`);
    const session = await ort.InferenceSession.create(join(dir, 'image_encoder.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1 });
    return new EvaluationEncoder(session, input.size, input.image_mean as [number, number, number], input.image_std as [number, number, number], description);
  }

  /** One unit embedding per image; images of another size are resized and centre-cropped as CLIP's processor would. */
  async embed(images: readonly RgbImage[]): Promise<Float32Array[]> {
    const config = { shortestEdge: this.size, cropHeight: this.size, cropWidth: this.size, rescaleFactor: 1 / 255, mean: this.mean, std: this.std, doResize: true, doCenterCrop: true, doNormalize: true };
    const out: Float32Array[] = [];
    for (let start = 0; start < images.length; start += 64) {
      const chunk = images.slice(start, start + 64);
      const pixels = await Promise.all(chunk.map((image) => clipPixelValues(image, config)));
      const plane = 3 * this.size * this.size;
      const batch = new Float32Array(chunk.length * plane);
      pixels.forEach((p, i) => batch.set(p.data, i * plane));
      const result = await this.session.run({ pixel_values: new ort.Tensor('float32', batch, [chunk.length, 3, this.size, this.size]) });
      const embeds = result.image_embeds;
      const width = embeds.dims[1];
      const data = embeds.data as Float32Array;
      for (let i = 0; i < chunk.length; i++) out.push(data.slice(i * width, (i + 1) * width));
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

