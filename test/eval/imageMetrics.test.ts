import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { RgbImage } from '../../src/pipeline/rgbImage.js';
import { PSNR_CAP, psnr, ssim } from '../../src/eval/imageMetrics.js';
import { mulberry32 } from '../../src/eval/bootstrap.js';

function image(width: number, height: number, pixel: (x: number, y: number, c: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(pixel(x, y, c))));
  return { width, height, data };
}

const scene = image(64, 64, (x, y, c) => 40 + ((x * 3 + y * 2 + c * 40) % 160) + (x > 30 && y > 20 ? 40 : 0));

describe('image metrics', () => {
  test('identical images: PSNR at its cap, SSIM 1', () => {
    assert.equal(psnr(scene, scene), PSNR_CAP);
    assert.ok(Math.abs(ssim(scene, scene) - 1) < 1e-12);
  });

  test('PSNR of a known error: every value off by 8 gives 10·log10(255²/64)', () => {
    const shifted = { ...scene, data: scene.data.map((v, i) => (i % 2 ? v + 8 : v - 8)) };
    assert.ok(Math.abs(psnr(scene, shifted) - 10 * Math.log10((255 * 255) / 64)) < 1e-9);
  });

  test('PSNR of Gaussian noise with σ = 10 is about 28.1 dB', () => {
    const random = mulberry32(3);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const flat = image(64, 64, () => 128);
    const noisy = image(64, 64, () => 128 + 10 * gauss());
    assert.ok(Math.abs(psnr(flat, noisy) - 10 * Math.log10((255 * 255) / 100)) < 0.3);
  });

  test('SSIM falls with noise and with structure changes, and is symmetric', () => {
    const random = mulberry32(5);
    const light = image(64, 64, (x, y, c) => scene.data[(y * 64 + x) * 3 + c] + (random() - 0.5) * 20);
    const heavy = image(64, 64, (x, y, c) => scene.data[(y * 64 + x) * 3 + c] + (random() - 0.5) * 120);
    const inverted = { ...scene, data: scene.data.map((v) => 255 - v) };
    const a = ssim(scene, light);
    const b = ssim(scene, heavy);
    assert.ok(a < 1 && b < a, `${a} then ${b}`);
    assert.ok(ssim(scene, inverted) < 0.2);
    assert.ok(Math.abs(ssim(light, scene) - a) < 1e-12);
  });

  test('a brightness shift costs SSIM little and PSNR much: the two see different things', () => {
    const brighter = { ...scene, data: scene.data.map((v) => Math.min(255, v + 30)) };
    assert.ok(ssim(scene, brighter) > 0.9);
    assert.ok(psnr(scene, brighter) < 20);
  });

  test('images of different sizes are refused by name', () => {
    assert.throws(() => psnr(scene, image(32, 64, () => 0)), /64x64 and 32x64/);
  });
});
