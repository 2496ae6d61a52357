import { ssim as ssimJs } from 'ssim.js';

import type { RgbImage } from '../pipeline/rgbImage.js';

/** PSNR in dB of two equally sized 8-bit RGB images, capped at 60 dB so that identical frames keep a mean finite. */
export function psnr(a: RgbImage, b: RgbImage): number {
  sameSize(a, b);
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += (a.data[i] - b.data[i]) ** 2;
  if (sum === 0) return PSNR_CAP;
  return Math.min(PSNR_CAP, 10 * Math.log10((255 * 255) / (sum / a.data.length)));
}

export const PSNR_CAP = 60;

/**
 * SSIM as Wang et al. (2004) define it and their MATLAB code computes it: luminance of each image
 * (MATLAB's rgb2gray), an 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255, over
 * the window positions inside the image, via ssim.js's "original" algorithm. No downsampling at
 * these sizes (ssim.js downsamples above 256 pixels, as the MATLAB code does).
 */
export function ssim(a: RgbImage, b: RgbImage): number {
  sameSize(a, b);
  return ssimJs(rgba(a), rgba(b), { ssim: 'original', rgb2grayVersion: 'original', downsample: 'original', windowSize: 11, k1: 0.01, k2: 0.03, bitDepth: 8 }).mssim;
}

function rgba(image: RgbImage): { data: Uint8ClampedArray; width: number; height: number } {
  const data = new Uint8ClampedArray(image.width * image.height * 4);
  for (let p = 0, q = 0; p < image.data.length; p += 3, q += 4) {
    data[q] = image.data[p];
    data[q + 1] = image.data[p + 1];
    data[q + 2] = image.data[p + 2];
    data[q + 3] = 255;
  }
  return { data, width: image.width, height: image.height };
}

function sameSize(a: RgbImage, b: RgbImage): void {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`images differ in size: ${a.width}x${a.height} and ${b.width}x${b.height}`);
}
