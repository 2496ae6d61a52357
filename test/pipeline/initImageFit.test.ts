/** Init images are fitted to the image encoder at the edge: exactly the same pixel_values, a fraction of the memory. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import sharp from 'sharp';

import type { ImagePreprocessConfig } from '../../src/pipeline/bundle/preprocessorConfig.js';
import { clipPixelValues, fitForImageEncoder } from '../../src/pipeline/clipImagePreprocess.js';
import { InvalidArgumentError } from '../../src/pipeline/errors.js';
import { decodeImage } from '../../src/pipeline/rgbImage.js';

function config(shortestEdge: number, crop: number): ImagePreprocessConfig {
  return { shortestEdge, cropHeight: crop, cropWidth: crop, rescaleFactor: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], doResize: true, doCenterCrop: true, doNormalize: true };
}

/** A noisy image (a smooth gradient plus noise), so a one-pixel shift of the crop shows. */
async function image(width: number, height: number, format: 'png' | 'jpeg'): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  let seed = 12345;
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    data[i] = ((i / 3) % width) * 200 / width + (seed % 55);
  }
  const pipeline = sharp(data, { raw: { width, height, channels: 3 } });
  return format === 'png' ? pipeline.png().toBuffer() : pipeline.jpeg({ quality: 90 }).toBuffer();
}

describe('init images fitted to the image encoder at the edge', () => {
  const cases: [number, number, 'png' | 'jpeg', ImagePreprocessConfig][] = [
    [1600, 1200, 'png', config(224, 224)],
    [1600, 1200, 'jpeg', config(224, 224)],
    [301, 999, 'png', config(224, 224)],
    [1000, 640, 'png', config(256, 224)], // CLIP variants that resize past the crop
    [640, 641, 'jpeg', config(32, 32)],
    [224, 224, 'png', config(224, 224)],
  ];
  for (const [width, height, format, cfg] of cases) {
    test(`${width}x${height} ${format}, shortest edge ${cfg.shortestEdge}, crop ${cfg.cropWidth}: the same pixel_values as from the full image`, async () => {
      const bytes = await image(width, height, format);
      const full = await clipPixelValues(await decodeImage(bytes), cfg);
      const fitted = await fitForImageEncoder(bytes, cfg);
      assert.deepEqual((await clipPixelValues(fitted, cfg)).dims, full.dims);
      assert.deepEqual(Array.from((await clipPixelValues(fitted, cfg)).data), Array.from(full.data));
      const side = Math.max(cfg.shortestEdge, cfg.cropWidth) + 1;
      assert.ok(fitted.width <= side && fitted.height <= side, `kept ${fitted.width}x${fitted.height}`);
      assert.ok(fitted.data.length <= side * side * 3);
    });
  }

  test('an image past the pixel limit is refused as INVALID_ARGUMENT before any pixel is decoded', async () => {
    const huge = await sharp({ create: { width: 5000, height: 5000, channels: 3, background: '#808080' } }).png().toBuffer();
    await assert.rejects(fitForImageEncoder(huge, config(224, 224)), (error: unknown) => error instanceof InvalidArgumentError && error.field === 'init_image');
  });
});
