import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import type { Engine } from '../../src/pipeline/engine.js';
import { imageSeed } from '../../src/pipeline/sequenceRequest.js';
import { SEQUENCE_FIXTURE_BUNDLES } from '../helpers/paths.js';
import { collect, createTestEngine, psnr, sequenceRequest } from '../helpers/testEngine.js';

const STEPS = ['boil the rice', 'add the peas', 'stir everything together'];

describe('the fusers beyond the paper through the engine', () => {
  let engine: Engine;
  // Rows of each UNet call (one sequence at a time, so one sequence's rows).
  const unetRows: number[] = [];
  before(async () => {
    engine = await createTestEngine({
      modelsDir: SEQUENCE_FIXTURE_BUNDLES,
      defaultModel: 'decoupled',
      observer: (report) => {
        if (report.model.includes('unet')) unetRows.push(report.rows / report.requests);
      },
    });
  });
  after(() => engine.dispose());

  for (const model of ['anchor_concatenation', 'decoupled', 'anchor_decoupled']) {
    test(`${model}: streams a sequence with three-row guidance, the same images for the same seed`, async () => {
      const request = sequenceRequest({ model, steps: STEPS, numInferenceSteps: 3, imageGuidanceScale: 1.5 });
      const images = await collect(engine.generate(request));
      assert.equal(images.length, 3);
      assert.ok(images.every((image) => image.width === 64 && image.height === 64));
      const again = await collect(engine.generate(request));
      assert.ok(again.every((image, i) => image.bytes.equals(images[i].bytes)));
    });
  }

  test('image guidance 1 runs two UNet rows per step and draws what three rows draw at a scale a hair above 1', async () => {
    const request = (imageGuidanceScale: number) => sequenceRequest({ model: 'decoupled', steps: STEPS, numInferenceSteps: 3, imageGuidanceScale });
    unetRows.length = 0;
    const two = await collect(engine.generate(request(1)));
    assert.deepEqual([...new Set(unetRows)], [2]);
    unetRows.length = 0;
    const three = await collect(engine.generate(request(1 + 1e-6)));
    assert.deepEqual([...new Set(unetRows)], [3]);
    for (let i = 0; i < two.length; i++) assert.ok(psnr(two[i].rgb.data, three[i].rgb.data) > 50, `frame ${i + 1}: ${psnr(two[i].rgb.data, three[i].rgb.data)} dB`);
  });

  // Frame 3 of a sequence is conditioned on frame 2 (and, for a first-frame fuser, on frame 1). A one-step request
  // that starts from frame 2 as its init image, at frame 3's seed, has frame 2 as both its previous and its first frame.
  const continueFromSecond = async (model: string): Promise<{ full: Buffer; continued: Buffer }> => {
    const base = sequenceRequest({ model, steps: STEPS, numInferenceSteps: 3, imageGuidanceScale: 1.5 });
    const images = await collect(engine.generate(base));
    const [continued] = await collect(engine.generate({ ...base, steps: [STEPS[2]], seed: imageSeed(base.seed, 2), initImage: images[1].rgb }));
    return { full: images[2].bytes, continued: continued.bytes };
  };

  test('a decoupled fuser sees only the previous frame: continuing from frame 2 redraws frame 3 exactly', async () => {
    const { full, continued } = await continueFromSecond('decoupled');
    assert.ok(continued.equals(full));
  });

  for (const model of ['anchor_concatenation', 'anchor_decoupled']) {
    test(`${model} sees the first frame too: continuing from frame 2 (now also the first frame) draws another frame 3`, async () => {
      const { full, continued } = await continueFromSecond(model);
      assert.ok(!continued.equals(full));
    });
  }
});
