/**
 * The engine's CLIP image preprocessing against pixel_values computed the way transformers'
 * CLIPImageProcessor computes them (test/fixtures/clip_preprocess.json, written by
 * training/stepframe_train/clip_preprocess_reference.py with PIL's bicubic resize).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { clipPixelValues } from '../../src/pipeline/clipImagePreprocess.js';
import type { RgbImage } from '../../src/pipeline/rgbImage.js';
import { REPO_ROOT } from '../helpers/paths.js';

interface Case {
  name: string;
  width: number;
  height: number;
  shortest_edge: number | null;
  crop: number;
  pixel_values: number[];
}

const fixture = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'clip_preprocess.json'), 'utf8')) as { mean: number[]; std: number[]; cases: Case[] };

/** The input images: the same formula as `pattern` in clip_preprocess_reference.py. */
function pattern(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = Math.floor((x * 255) / Math.max(1, width - 1));
      data[i + 1] = Math.floor((y * 255) / Math.max(1, height - 1));
      data[i + 2] = x + y > Math.floor((width + height) / 2) ? 220 : 30;
    }
  }
  return { width, height, data };
}

describe('CLIP image preprocessing against CLIPImageProcessor', () => {
  for (const c of fixture.cases) {
    test(c.name, async () => {
      const config = {
        shortestEdge: c.shortest_edge ?? c.crop,
        cropHeight: c.crop,
        cropWidth: c.crop,
        rescaleFactor: 1 / 255,
        mean: fixture.mean as [number, number, number],
        std: fixture.std as [number, number, number],
        doResize: c.shortest_edge !== null,
        doCenterCrop: true,
        doNormalize: true,
      };
      const { data, dims } = await clipPixelValues(pattern(c.width, c.height), config);
      assert.deepEqual(dims, [1, 3, c.crop, c.crop]);
      let worst = 0;
      let total = 0;
      for (let i = 0; i < data.length; i++) {
        const error = Math.abs(data[i] - c.pixel_values[i]);
        worst = Math.max(worst, error);
        total += error;
      }
      const mean = total / data.length;
      if (c.shortest_edge === null) {
        assert.ok(worst < 1e-4, `max error ${worst}: without a resize the arithmetic is exact`);
      } else {
        // sharp's cubic kernel and PIL's bicubic differ by up to two grey levels at the edge (one grey
        // level is 1/255/std ≈ 0.015): measured mean 0.0009 and 0.0005, max 0.015 and 0.028. An input
        // one pixel wider, which moves the resize and crop by a fraction of a pixel, already gives a
        // mean of 0.013 to 0.019 and a max of 0.85 to 1.4.
        assert.ok(mean < 0.004, `mean error ${mean.toFixed(4)}`);
        assert.ok(worst < 0.06, `max error ${worst.toFixed(4)}`);
      }
    });
  }
});
