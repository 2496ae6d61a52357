import type { ImagePreprocessConfig } from './bundle/preprocessorConfig.js';
import { type RgbImage, decodeImage, resizeBicubic } from './rgbImage.js';
import type { Tensor } from './tensor.js';

/**
 * CLIPImageProcessor: resize the shortest side to `shortest_edge` (bicubic), center-crop, rescale
 * to [0, 1] and normalise with the bundle's mean and std, giving pixel_values [1, 3, H, W].
 * Frames the engine decoded are already the crop size, so for them this is exact arithmetic.
 */
export async function clipPixelValues(image: RgbImage, config: ImagePreprocessConfig): Promise<Tensor> {
  let resized = image;
  if (config.doResize) {
    const { width, height } = resizedSize(image.width, image.height, config);
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

/** The size CLIPImageProcessor resizes a width×height image to: shortest side to `shortest_edge`. */
export function resizedSize(width: number, height: number, config: ImagePreprocessConfig): { width: number; height: number } {
  const scale = config.shortestEdge / Math.min(width, height);
  // As transformers' get_resize_output_image_size: the long side is truncated, not rounded.
  return {
    width: width <= height ? config.shortestEdge : Math.floor(width * scale),
    height: height <= width ? config.shortestEdge : Math.floor(height * scale),
  };
}

/**
 * What of an init image the image encoder will ever read, decoded once at the edge: resized as
 * CLIPImageProcessor resizes it, and its long side cut to the centre crop (keeping an even margin,
 * so that clipPixelValues' own centre crop lands on the same pixels). clipPixelValues then gives
 * exactly what it gives for the full image, while a request holds about 224×224×3 bytes instead of
 * up to 4096×4096×3 (48 MB) for its whole life.
 */
export async function fitForImageEncoder(bytes: Uint8Array, config: ImagePreprocessConfig, field = 'init_image'): Promise<RgbImage> {
  // Decoded whole (an image past the pixel limit is refused from its header), then resized as
  // clipPixelValues resizes: the full-size pixels live only for this call.
  const full = await decodeImage(bytes, field);
  const target = config.doResize ? resizedSize(full.width, full.height, config) : full;
  const resized = await resizeBicubic(full, target.width, target.height);
  if (!config.doCenterCrop) return resized;
  const keep = (length: number, crop: number, short: number) => {
    const wanted = Math.min(length, Math.max(crop, short));
    return wanted + ((length - wanted) % 2);
  };
  const keepW = keep(resized.width, config.cropWidth, Math.min(resized.width, resized.height));
  const keepH = keep(resized.height, config.cropHeight, Math.min(resized.width, resized.height));
  if (keepW === resized.width && keepH === resized.height) return resized;
  const left = (resized.width - keepW) / 2;
  const top = (resized.height - keepH) / 2;
  const data = new Uint8Array(keepW * keepH * 3);
  for (let y = 0; y < keepH; y++) data.set(resized.data.subarray(((top + y) * resized.width + left) * 3, ((top + y) * resized.width + left + keepW) * 3), y * keepW * 3);
  return { width: keepW, height: keepH, data };
}
