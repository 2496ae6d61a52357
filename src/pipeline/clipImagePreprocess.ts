import type { ImagePreprocessConfig } from './bundle/preprocessorConfig.js';
import { type RgbImage, resizeBicubic } from './rgbImage.js';
import type { Tensor } from './tensor.js';

/**
 * CLIPImageProcessor: resize the shortest side to `shortest_edge` (bicubic), center-crop, rescale
 * to [0, 1] and normalise with the bundle's mean and std, giving pixel_values [1, 3, H, W].
 * Frames the engine decoded are already the crop size, so for them this is exact arithmetic.
 */
export async function clipPixelValues(image: RgbImage, config: ImagePreprocessConfig): Promise<Tensor> {
  let resized = image;
  if (config.doResize) {
    const short = Math.min(image.width, image.height);
    const scale = config.shortestEdge / short;
    // As transformers' get_resize_output_image_size: the long side is truncated, not rounded.
    const width = image.width <= image.height ? config.shortestEdge : Math.floor(image.width * scale);
    const height = image.height <= image.width ? config.shortestEdge : Math.floor(image.height * scale);
    resized = await resizeBicubic(image, width, height);
  }
  const cropH = config.doCenterCrop ? config.cropHeight : resized.height;
  const cropW = config.doCenterCrop ? config.cropWidth : resized.width;
  const top = Math.max(0, Math.floor((resized.height - cropH) / 2));
  const left = Math.max(0, Math.floor((resized.width - cropW) / 2));
  const plane = cropH * cropW;
  const data = new Float32Array(3 * plane);
  for (let y = 0; y < cropH; y++) {
    for (let x = 0; x < cropW; x++) {
      const src = ((top + y) * resized.width + (left + x)) * 3;
      for (let c = 0; c < 3; c++) {
        const v = resized.data[src + c] * config.rescaleFactor;
        data[c * plane + y * cropW + x] = config.doNormalize ? (v - config.mean[c]) / config.std[c] : v;
      }
    }
  }
  return { data, dims: [1, 3, cropH, cropW] };
}
