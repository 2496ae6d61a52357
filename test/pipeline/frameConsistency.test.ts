import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { SessionPool } from '../../src/pipeline/bundle/sessionPool.js';
import { parsePreprocessorConfig } from '../../src/pipeline/bundle/preprocessorConfig.js';
import type { OnnxModel } from '../../src/pipeline/bundle/onnxModel.js';
import { clipPixelValues } from '../../src/pipeline/clipImagePreprocess.js';
import type { Engine } from '../../src/pipeline/engine.js';
import type { RgbImage } from '../../src/pipeline/rgbImage.js';
import { conditioningImage } from '../../src/pipeline/sequenceLoop.js';
import { cosineSimilarity } from '../../src/pipeline/tensor.js';
import { TEST_SESSION_SETTINGS } from '../helpers/engineSettings.js';
import { FIXTURE_BUNDLES } from '../helpers/paths.js';
import { collect, createTestEngine, sequenceRequest } from '../helpers/testEngine.js';

const SHARED = join(FIXTURE_BUNDLES, 'shared');
const preprocess = parsePreprocessorConfig(JSON.parse(readFileSync(join(SHARED, 'feature_extractor', 'preprocessor_config.json'), 'utf8')), 'preprocessor_config.json');

describe('frame consistency: warm start and the per-frame similarity score', () => {
  let engine: Engine;
  let pool: SessionPool;
  let imageEncoder: OnnxModel;
  before(async () => {
    engine = await createTestEngine();
    // The image encoder loaded on its own, apart from the engine: the score must be what this model says.
    pool = new SessionPool(TEST_SESSION_SETTINGS);
    imageEncoder = await pool.load(join(SHARED, 'image_encoder', 'model.onnx'), 'image_encoder');
  });
  after(async () => {
    await engine.dispose();
    await pool.dispose();
  });

  const pooled = async (image: RgbImage) => {
    const pixels = await clipPixelValues(image, preprocess);
    const out = await imageEncoder.run({ pixel_values: { type: 'float32', data: pixels.data, dims: pixels.dims } });
    return out.pooler_output.data;
  };

  test('each frame after the first carries the cosine similarity of its image embedding to the previous frame\'s', async () => {
    const images = await collect(engine.generate(sequenceRequest({ model: 'concatenation', numInferenceSteps: 3 })));
    assert.equal(images[0].previousFrameSimilarity, null, 'no previous frame and no init image');
    for (let k = 1; k < images.length; k++) {
      const expected = cosineSimilarity(await pooled(images[k].rgb), await pooled(images[k - 1].rgb));
      const got = images[k].previousFrameSimilarity;
      assert.ok(got !== null && Math.abs(got - expected) < 1e-5, `frame ${k}: ${got} against ${expected}`);
    }
  });

  test('with an init image the first frame is scored against it; a text-only bundle has no score', async () => {
    const [first] = await collect(engine.generate(sequenceRequest({ model: 'concatenation', numInferenceSteps: 2, steps: ['boil the rice'] })));
    const [continued] = await collect(engine.generate(sequenceRequest({ model: 'concatenation', numInferenceSteps: 2, steps: ['drain the rice'], initImage: first.rgb })));
    const expected = cosineSimilarity(await pooled(continued.rgb), await pooled(first.rgb));
    assert.ok(Math.abs(continued.previousFrameSimilarity! - expected) < 1e-5);
    const baseline = await collect(engine.generate(sequenceRequest({ model: 'baseline', numInferenceSteps: 2 })));
    assert.ok(baseline.every((image) => image.previousFrameSimilarity === null));
  });

  test('frame_strength 0.5 runs half the steps for every frame after the first, keeps the first as it was, and is deterministic', async () => {
    const progress = (strength: number) => {
      const calls: number[] = [0, 0, 0];
      return { calls, run: () => collect(engine.generate(sequenceRequest({ model: 'concatenation', scheduler: 'ddim', numInferenceSteps: 10, frameStrength: strength }), { onProgress: (p) => (calls[p.stepIndex] = p.denoiseSteps) })) };
    };
    const cold = progress(1);
    const warm = progress(0.5);
    const coldImages = await cold.run();
    const warmImages = await warm.run();
    assert.deepEqual(cold.calls, [10, 10, 10]);
    assert.deepEqual(warm.calls, [10, 5, 5]);
    assert.ok(warmImages[0].bytes.equals(coldImages[0].bytes), 'the first frame starts from noise either way');
    assert.ok(!warmImages[1].bytes.equals(coldImages[1].bytes), 'later frames start from the previous one');
    const again = await collect(engine.generate(sequenceRequest({ model: 'concatenation', scheduler: 'ddim', numInferenceSteps: 10, frameStrength: 0.5 })));
    assert.ok(again.every((image, i) => image.bytes.equals(warmImages[i].bytes)), 'same seed, same images');
  });

  test('conditioned on the first frame, an image does not depend on the images between: change step 2\'s text and step 3 stays the same', async () => {
    const [first] = await collect(engine.generate(sequenceRequest({ model: 'concatenation', numInferenceSteps: 2, steps: ['boil the rice'] })));
    const third = async (firstFrameWeight: number, middle: string) =>
      (await collect(engine.generate(sequenceRequest({ model: 'concatenation', numInferenceSteps: 2, steps: ['drain the rice', middle, 'serve the rice'], initImage: first.rgb, firstFrameWeight }))))[2].bytes;
    assert.ok((await third(1, 'add the butter')).equals(await third(1, 'chop the parsley')), 'first: step 3 sees only the init image');
    assert.ok(!(await third(0, 'add the butter')).equals(await third(0, 'chop the parsley')), 'previous: step 3 sees step 2');
  });

  test('a first-frame weight between 0 and 1 conditions on the weighted mean of the two embeddings; before there is a first frame, on the previous', () => {
    const embedding = (v: number) => ({ hidden: { data: new Float32Array([v, 2 * v]), dims: [1, 1, 2] }, pooled: { data: new Float32Array([v]), dims: [1, 1] } });
    const first = embedding(1);
    const previous = embedding(3);
    const mean = conditioningImage(0.5, first, previous)!;
    assert.deepEqual([...mean.hidden.data, ...mean.pooled.data], [2, 4, 2]);
    const weighted = conditioningImage(0.75, first, previous)!;
    assert.deepEqual([...weighted.hidden.data, ...weighted.pooled.data], [1.5, 3, 1.5]);
    assert.equal(conditioningImage(1, first, previous), first);
    assert.equal(conditioningImage(0, first, previous), previous);
    assert.equal(conditioningImage(0.5, null, previous), previous);
  });

  test('a warm start keeps more of the previous frame: its similarity to the previous frame is higher at strength 0.3 than from noise', async () => {
    const mean = (images: { previousFrameSimilarity: number | null }[]) => images.slice(1).reduce((s, i) => s + i.previousFrameSimilarity!, 0) / (images.length - 1);
    const steps = ['chop the carrots', 'add the carrots to the pan', 'stir everything together', 'season with salt', 'serve on a plate'];
    const cold = await collect(engine.generate(sequenceRequest({ model: 'concatenation', scheduler: 'ddim', numInferenceSteps: 10, steps })));
    const warm = await collect(engine.generate(sequenceRequest({ model: 'concatenation', scheduler: 'ddim', numInferenceSteps: 10, steps, frameStrength: 0.3 })));
    assert.ok(mean(warm) > mean(cold), `warm ${mean(warm)} against cold ${mean(cold)}`);
  });
});
