import sharp from 'sharp';

import { InvalidArgumentError } from './errors.js';
import type { Tensor } from './tensor.js';

/** 8-bit RGB pixels, row-major, 3 bytes per pixel: the frame a user sees and the next step conditions on. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export type ImageFormat = 'png' | 'jpeg' | 'webp';

export const MIME_TYPES: Record<ImageFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

/** One decoded VAE row ([3, H, W], about [-1, 1]) to pixels, rounding as diffusers' numpy_to_pil does. */
export function vaeOutputToRgb(sample: Tensor, row = 0): RgbImage {
  const [, channels, height, width] = sample.dims;
  if (channels !== 3) throw new Error(`VAE output has ${channels} channels, expected 3`);
  const plane = height * width;
  const offset = row * 3 * plane;
  const data = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < plane; p++) {
      const v = Math.min(1, Math.max(0, sample.data[offset + c * plane + p] / 2 + 0.5));
      data[p * 3 + c] = Math.round(v * 255);
    }
  }
  return { width, height, data };
}

/** Encodes with sharp; quality applies to JPEG and WebP. */
export async function encodeImage(image: RgbImage, format: ImageFormat, quality: number): Promise<Buffer> {
  const pipeline = sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  });
  if (format === 'jpeg') return pipeline.jpeg({ quality }).toBuffer();
  if (format === 'webp') return pipeline.webp({ quality }).toBuffer();
  return pipeline.png().toBuffer();
}

/** Decoded images are refused above this many pixels (4096²): a few KB of PNG can claim gigapixels. */
export const MAX_INPUT_PIXELS = 4096 * 4096;

function undecodable(field: string, bytes: Uint8Array, error: unknown): InvalidArgumentError {
  // sharp's own text stays out of the status: it is library detail, and it can repeat the input.
  return new InvalidArgumentError(field, `cannot be decoded as an image (PNG, JPEG, WebP, GIF, TIFF or AVIF, at most 4096×4096 pixels; ${bytes.length} bytes given)`, { cause: error });
}

/** A user-supplied image's size, read from its header without decoding its pixels. */
export async function imageSize(bytes: Uint8Array, field = 'init_image'): Promise<{ width: number; height: number }> {
  try {
    const { width, height } = await sharp(bytes, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS }).metadata();
    if (!width || !height || width * height > MAX_INPUT_PIXELS) throw new Error(`${width}x${height}`);
    return { width, height };
  } catch (error) {
    throw undecodable(field, bytes, error);
  }
}

/** Decodes a user-supplied image (PNG, JPEG, WebP, ...) to RGB, flattening any alpha onto white. */
export async function decodeImage(bytes: Uint8Array, field = 'init_image'): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(bytes, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (error) {
    throw undecodable(field, bytes, error);
  }
}

/** Resizes with a bicubic kernel (CLIPImageProcessor's resample=3). */
export async function resizeBicubic(image: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (image.width === width && image.height === height) return image;
  const { data, info } = await sharp(Buffer.from(image.data), { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(width, height, { kernel: 'cubic', fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
