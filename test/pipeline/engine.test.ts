import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import sharp from 'sharp';

import type { Engine } from '../../src/pipeline/engine.js';
import { BundleError, CancelledError, InvalidArgumentError, OverloadedError } from '../../src/pipeline/errors.js';
import { scratchCopy } from '../helpers/scratchBundles.js';
import { collect, createTestEngine, psnr, sequenceRequest } from '../helpers/testEngine.js';

describe('engine: the sequence loop', () => {
  let engine: Engine;
  before(async () => {
    engine = await createTestEngine();
  });
  after(() => engine.dispose());

  test('N steps in gives N decodable images out, in order, with timings', async () => {
    const request = sequenceRequest();
    const progress: number[] = [];
    const images = await collect(engine.generate(request, { onProgress: (p) => progress.push(p.stepIndex * 100 + p.denoiseStep) }));
    assert.deepEqual(images.map((i) => [i.stepIndex, i.text]), request.steps.map((s, i) => [i, s]));
    for (const image of images) {
      const meta = await sharp(image.bytes).metadata();
      assert.equal(meta.format, 'png');
      assert.equal(meta.width, 64);
      assert.equal(meta.height, 64);
      assert.equal(image.mimeType, 'image/png');
      assert.ok(image.timings.denoiseMs > 0 && image.timings.totalMs >= image.timings.denoiseMs);
    }
    assert.deepEqual(progress, [1, 2, 3, 4, 101, 102, 103, 104, 201, 202, 203, 204]);
  });

  test('every scheduler under both guidance modes gives valid, reproducible images of its own', async () => {
    const seen = new Map<string, string>();
    for (const scheduler of ['ddpm', 'ddim', 'euler', 'euler_ancestral', 'dpmpp_2m', 'pndm', 'lms'] as const) {
      // null: two-row guidance (text and image together); 1.5: three rows, the image scaled on its own.
      for (const imageGuidanceScale of [null, 1.5]) {
        const label = `${scheduler}, image guidance ${imageGuidanceScale ?? 'joint'}`;
        const request = sequenceRequest({ scheduler, steps: ['boil the rice', 'stir everything together'], imageGuidanceScale });
        const [first, again] = [await collect(engine.generate(request)), await collect(engine.generate(request))];
        assert.equal(first.length, 2, label);
        for (const [i, image] of first.entries()) {
          const meta = await sharp(image.bytes).metadata();
          assert.deepEqual([meta.format, meta.width, meta.height], ['png', 64, 64], label);
          assert.ok(image.bytes.equals(again[i].bytes), `${label}: step ${i} is not reproducible`);
        }
        // The second step is conditioned on the first image, which is where the guidance modes differ.
        // DDPM and Euler ancestral are one process written in two coordinate systems (the ancestral
        // step's sigma_up is DDPM's posterior variance), so with the same noise they may round to the
        // same bytes; every other pair must differ.
        const key = first[1].bytes.toString('base64');
        const twin = seen.get(key);
        const equivalent = twin !== undefined && [twin.split(',')[0], scheduler].sort().join() === 'ddpm,euler_ancestral' && twin.endsWith(label.split(',')[1]);
        assert.ok(twin === undefined || equivalent, `${label} gave the same image as ${twin}`);
        seen.set(key, label);
      }
    }
  });

  test('same seed and settings give byte-identical images; another seed does not', async () => {
    const a = await collect(engine.generate(sequenceRequest()));
    const b = await collect(engine.generate(sequenceRequest()));
    const c = await collect(engine.generate(sequenceRequest({ seed: 43n })));
    a.forEach((image, i) => assert.ok(image.bytes.equals(b[i].bytes), `step ${i}`));
    assert.ok(!a[0].bytes.equals(c[0].bytes));
  });

  test('batched with other sequences, a sequence gives the same images (identical or >= 60 dB)', async () => {
    const alone = await collect(engine.generate(sequenceRequest()));
    const together = await Promise.all([
      collect(engine.generate(sequenceRequest())),
      collect(engine.generate(sequenceRequest({ seed: 7n, steps: ['slice the onions', 'fry the onions'] }))),
      collect(engine.generate(sequenceRequest({ seed: 8n, scheduler: 'ddim', imageGuidanceScale: 1.5 }))),
      collect(engine.generate(sequenceRequest({ seed: 9n, model: 'concatenation' }))),
    ]);
    alone.forEach((image, i) => {
      const db = psnr(image.rgb.data, together[0][i].rgb.data);
      assert.ok(db >= 60, `step ${i}: ${db.toFixed(1)} dB`);
    });
  });

  test('across executors, a request alone and alongside five others gives byte-identical PNGs', async () => {
    assert.equal(engine.stats().executors.executors, 2);
    const alone = await collect(engine.generate(sequenceRequest()));
    const crowd = [
      sequenceRequest({ seed: 7n, steps: ['slice the onions', 'fry the onions'] }),
      sequenceRequest({ seed: 8n, scheduler: 'ddim', imageGuidanceScale: 1.5 }),
      sequenceRequest({ seed: 9n, model: 'concatenation' }),
      sequenceRequest({ seed: 10n, numInferenceSteps: 6 }),
      sequenceRequest({ seed: 11n, scheduler: 'euler_ancestral', steps: ['boil the rice'] }),
    ];
    const [together] = await Promise.all([collect(engine.generate(sequenceRequest())), ...crowd.map((r) => collect(engine.generate(r)))]);
    alone.forEach((image, i) => assert.ok(image.bytes.equals(together[i].bytes), `step ${i} differs`));
  });

  test('the previous image matters: a different init image changes the output', async () => {
    const red = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).map((_, i) => (i % 3 === 0 ? 220 : 30)) };
    const blue = { width: 80, height: 64, data: new Uint8Array(80 * 64 * 3).map((_, i) => (i % 3 === 2 ? 220 : 30)) };
    const steps = ['add the tomatoes'];
    const [withRed] = await collect(engine.generate(sequenceRequest({ steps, initImage: red })));
    const [withBlue] = await collect(engine.generate(sequenceRequest({ steps, initImage: blue })));
    const [without] = await collect(engine.generate(sequenceRequest({ steps })));
    assert.ok(psnr(withRed.rgb.data, withBlue.rgb.data) < 60);
    assert.ok(psnr(withRed.rgb.data, without.rgb.data) < 60);
    // The text-only baseline ignores the image entirely.
    const [baseRed] = await collect(engine.generate(sequenceRequest({ steps, model: 'baseline', initImage: red })));
    const [baseBlue] = await collect(engine.generate(sequenceRequest({ steps, model: 'baseline', initImage: blue })));
    assert.ok(baseRed.bytes.equals(baseBlue.bytes));
  });

  test('each frame is fed back: the same step text after a different first step gives a different second image', async () => {
    const a = await collect(engine.generate(sequenceRequest({ steps: ['chop the carrots', 'stir everything together'] })));
    const b = await collect(engine.generate(sequenceRequest({ steps: ['bake the potatoes', 'stir everything together'] })));
    // Random weights pass little of the image through, so any pixel difference proves the feedback.
    assert.ok(!Buffer.from(a[1].rgb.data).equals(Buffer.from(b[1].rgb.data)));
  });

  test('three-row guidance (a separate image scale) changes the result when there is an image', async () => {
    const initImage = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(200) };
    const [two] = await collect(engine.generate(sequenceRequest({ steps: ['add the peas'], initImage })));
    const [three] = await collect(engine.generate(sequenceRequest({ steps: ['add the peas'], initImage, imageGuidanceScale: 2 })));
    assert.ok(!two.bytes.equals(three.bytes));
    // Without a previous image the image-only row equals the unconditional row: s_I has nothing to scale.
    const [noImageTwo] = await collect(engine.generate(sequenceRequest({ steps: ['add the peas'] })));
    const [noImageThree] = await collect(engine.generate(sequenceRequest({ steps: ['add the peas'], imageGuidanceScale: 2 })));
    assert.ok(psnr(noImageTwo.rgb.data, noImageThree.rgb.data) >= 60);
  });

  test('JPEG and WebP outputs honour the format', async () => {
    for (const format of ['jpeg', 'webp'] as const) {
      const [image] = await collect(engine.generate(sequenceRequest({ steps: ['add the peas'], format, quality: 80 })));
      assert.equal((await sharp(image.bytes).metadata()).format, format);
      assert.equal(image.mimeType, `image/${format}`);
    }
  });

  test('a step count the scheduler cannot do is refused before admission, before any model runs', async () => {
    const stages: string[] = [];
    await assert.rejects(
      collect(engine.generate(sequenceRequest({ scheduler: 'lcm', numInferenceSteps: 60 }), { onStage: (_, stage) => stages.push(stage) })),
      (error: unknown) => error instanceof InvalidArgumentError && error.field === 'num_inference_steps' && /LCM takes 1 to 50 steps/.test(error.message),
    );
    assert.deepEqual(stages, [], 'no encoder, fuser or UNet ran');
  });

  test('an unknown model fails with INVALID_ARGUMENT naming the field and the choices', async () => {
    await assert.rejects(collect(engine.generate(sequenceRequest({ model: 'sdxl' }))), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError);
      assert.equal(error.field, 'model');
      assert.match(error.message, /available: attend_to_image, attend_to_text, baseline/);
      return true;
    });
  });
});

describe('engine: cancellation and admission', () => {
  test('cancelling mid-sequence stops it, frees its batch rows and its slot', async () => {
    const engine = await createTestEngine({ admission: { maxActiveSequences: 1, maxQueuedSequences: 1 } });
    after(() => engine.dispose());
    const controller = new AbortController();
    let progressAfterAbort = 0;
    const cancelled = collect(
      engine.generate(sequenceRequest({ numInferenceSteps: 20 }), {
        signal: controller.signal,
        onProgress: (p) => {
          if (controller.signal.aborted) progressAfterAbort++;
          if (p.stepIndex === 1 && p.denoiseStep === 3) controller.abort();
        },
      }),
    );
    // Queued behind the cancelled one: it only runs once the slot is released.
    const next = collect(engine.generate(sequenceRequest({ steps: ['serve'] })));
    await assert.rejects(cancelled, CancelledError);
    assert.ok(progressAfterAbort <= 1, `${progressAfterAbort} denoising steps ran after the abort`);
    assert.equal((await next).length, 1);
    const { loadedWeightBytes, ...stats } = engine.stats();
    assert.ok(loadedWeightBytes > 0);
    assert.deepEqual(stats, { activeSequences: 0, pausedSequences: 0, queuedSequences: 0, queuedUnetRows: 0, executors: { executors: 2, busy: 0, restarts: 0 }, modelsByProvider: { cpu: 14 }, loadedBundles: 6 });
  });

  test('overload fails at once with OverloadedError when the queue is full', async () => {
    const engine = await createTestEngine({ admission: { maxActiveSequences: 1, maxQueuedSequences: 1 } });
    after(() => engine.dispose());
    const first = collect(engine.generate(sequenceRequest({ steps: ['boil the rice'] })));
    const second = collect(engine.generate(sequenceRequest({ steps: ['boil the rice'] })));
    await new Promise((r) => setImmediate(r));
    await assert.rejects(collect(engine.generate(sequenceRequest())), OverloadedError);
    assert.equal((await first).length, 1);
    assert.equal((await second).length, 1);
  });
});

describe('engine: bundles refused at load', () => {
  test('a bundle whose own defaults cannot run (defaults.scheduler lcm at 60 steps) is refused at load, naming them', async (t) => {
    const dir = scratchCopy(t);
    const manifestPath = join(dir, 'baseline', 'stepframe.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { defaults: Record<string, unknown> };
    manifest.defaults.scheduler = 'lcm';
    manifest.defaults.num_inference_steps = 60;
    writeFileSync(manifestPath, JSON.stringify(manifest));
    await assert.rejects(createTestEngine({ modelsDir: dir }), (error: unknown) =>
      error instanceof BundleError && /bundle baseline: defaults \(scheduler "lcm", 60 steps\) cannot run: num_inference_steps: LCM takes 1 to 50/.test(error.message));
  });
});
