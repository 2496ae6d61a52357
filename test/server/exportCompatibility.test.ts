import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import sharp from 'sharp';

import type { SequenceEvent } from '../../clients/typescript/stepframeClient.js';
import { StepframeClient } from '../../clients/typescript/stepframeClient.js';
import { SessionPool } from '../../src/pipeline/bundle/sessionPool.js';
import { parseConfig } from '../../src/server/config.js';
import { createLogger } from '../../src/server/logger.js';
import { startServer } from '../../src/server/stepframeServer.js';
import { TEST_SESSION_SETTINGS } from '../helpers/engineSettings.js';
import { buildExportVariants } from '../helpers/exportVariants.js';
import { Engine } from '../../src/pipeline/engine.js';
import { collect, createTestEngine, psnr, sequenceRequest } from '../helpers/testEngine.js';
import { REPO_ROOT } from '../helpers/paths.js';

const variants = buildExportVariants();
const skip = 'skip' in variants ? variants.skip : false;
after(() => void ('cleanup' in variants && variants.cleanup()));

interface Served {
  images: Buffer[];
  /** Denoising-step progress events (with stream_progress). */
  progress: number;
  models: { name: string; timestepInput: string; pooledImageOutput: string; defaults?: { scheduler: string } }[];
  logs: string[];
}

/** A real server on one variant's folder, one streamed sequence, then shutdown. */
async function serve(name: string, request: Record<string, unknown> = {}): Promise<Served> {
  if ('skip' in variants) throw new Error(variants.skip);
  const config = parseConfig(['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--model-dir', variants.models(name),
    '--execution-providers', 'cpu', '--intra-op-threads', '1', '--executors', '1', '--drain-timeout-s', '5'], {});
  const logs: string[] = [];
  const server = await startServer(config, createLogger('debug', (line) => logs.push(line)));
  try {
    await server.ready;
    const client = new StepframeClient(`127.0.0.1:${server.port}`);
    try {
      const events: SequenceEvent[] = [];
      for await (const e of client.generate({ steps: ['chop the carrots', 'stir the pot'], seed: 3n, numInferenceSteps: 4, ...request })) events.push(e);
      const models = await new Promise<Served['models']>((resolve, reject) =>
        client.raw.listModels({}, (error, response) => (error ? reject(error) : resolve(response!.models as Served['models']))),
      );
      return { images: events.flatMap((e) => (e.$case === 'image' ? [Buffer.from(e.value.data)] : [])), progress: events.filter((e) => e.$case === 'progress').length, models, logs };
    } finally {
      client.close();
    }
  } finally {
    await server.shutdown();
  }
}

/** A server that must refuse the variant at load; returns the error message. */
async function refusal(name: string): Promise<string> {
  if ('skip' in variants) throw new Error(variants.skip);
  const config = parseConfig(['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--model-dir', variants.models(name), '--execution-providers', 'cpu', '--executors', '1'], {});
  const server = await startServer(config, createLogger('error', () => undefined));
  try {
    await server.ready;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await server.shutdown();
  }
  throw new Error(`${name} loaded, but it should have been refused`);
}

async function pixels(png: Buffer): Promise<Uint8Array> {
  return new Uint8Array(await sharp(png).raw().toBuffer());
}

describe('real export variants: each loads and streams, or is refused naming the problem', { skip }, () => {
  const served = ['lcm_unet', 'distilled_one_step', 'optimum_int64_timestep', 'optimum_scalar_timestep', 'optimum_fp16', 'fp16_body_fp32_io', 'hub_int32_input_ids', 'external_data', 'sd2_v_prediction', 'pndm_scheduler', 'clip_vision_projection'];
  for (const name of served) {
    test(`${name} loads and streams decodable images`, async () => {
      const { images, models } = await serve(name);
      assert.equal(images.length, 2);
      for (const png of images) assert.equal((await sharp(png).metadata()).format, 'png');
      assert.equal(models[0].name, name);
    });
  }

  test('a scalar-timestep UNet serves with a warning that names the converter, and ListModels says "scalar"', async () => {
    const { models, logs } = await serve('optimum_scalar_timestep');
    assert.equal(models[0].timestepInput, 'scalar');
    assert.ok(logs.some((l) => /"level":"warn".*one scalar timestep per call.*npm run convert:timestep -- \/.*unet\/model\.onnx/.test(l)), logs.join('\n'));
  });

  test("an Optimum folder without stepframe.json samples with the scheduler its config names (SD 1.x's PNDM)", async () => {
    const { models } = await serve('pndm_scheduler');
    assert.equal(models[0].defaults!.scheduler, 'pndm');
  });

  test('a distilled one-step model: a request with no settings gets its defaults (1 denoising step, no guidance)', async () => {
    const { images, progress, models } = await serve('distilled_one_step', { numInferenceSteps: 0, streamProgress: true, steps: ['stir the pot'] });
    assert.equal(images.length, 1);
    assert.equal(progress, 1);
    assert.deepEqual(models[0].defaults, { scheduler: 'euler_ancestral', numInferenceSteps: 1, guidanceScale: 0, imageGuidanceScale: 1.5 });
  });

  test('CLIPVisionModelWithProjection: image_embeds serves as the pooled image embedding, and ListModels says so', async () => {
    const { models } = await serve('clip_vision_projection');
    assert.equal(models[0].pooledImageOutput, 'image_embeds');
  });

  test('float16 exports reproduce the float32 ones: every image at least 50 dB PSNR from them (same weights, same seed)', async () => {
    const reference = await serve('optimum_int64_timestep', { scheduler: 'ddim' });
    for (const name of ['optimum_fp16', 'fp16_body_fp32_io', 'hub_int32_input_ids', 'optimum_scalar_timestep', 'external_data']) {
      const { images } = await serve(name, { scheduler: 'ddim' });
      for (let i = 0; i < images.length; i++) {
        const db = psnr(await pixels(images[i]), await pixels(reference.images[i]));
        // Only the float16 variants round anything; the others compute the same graph.
        assert.ok(db >= (name.includes('fp16') ? 50 : 60), `${name} step ${i}: ${db.toFixed(1)} dB`);
      }
    }
  });

  test('training/ export --fp16: float16 bundles of every fuser load with their hashes and track the fp32 fixtures to at least 50 dB PSNR', async (t) => {
    const out = mkdtempSync(join(tmpdir(), 'stepframe-fp16-'));
    t.after(() => rmSync(out, { recursive: true, force: true }));
    execFileSync('/usr/bin/python3', ['-m', 'stepframe_train.export', '--random', '--seed', '7', '--preset', 'tiny', '--fp16', '--out', out], { cwd: join(REPO_ROOT, 'training'), stdio: 'ignore' });
    const settings = { ...TEST_SESSION_SETTINGS, executors: 1 };
    const fp16 = await Engine.create({ modelsDir: out, session: settings, batch: { maxBatch: 12, maxQueueDelayMs: 2 }, admission: { maxActiveSequences: 4, maxQueuedSequences: 4 } });
    t.after(() => fp16.dispose());
    const fp32 = await createTestEngine({ session: settings });
    t.after(() => fp32.dispose());
    for (const model of ['attend_to_image', 'image_pooling', 'baseline']) {
      const request = sequenceRequest({ model, steps: ['chop the carrots', 'stir the pot'], scheduler: 'ddim' });
      const [a, b] = [await collect(fp16.generate(request)), await collect(fp32.generate(request))];
      a.forEach((image, i) => {
        const db = psnr(image.rgb.data, b[i].rgb.data);
        assert.ok(db >= 50, `${model} step ${i}: ${db.toFixed(1)} dB`);
      });
    }
  });

  test('an LCM UNet samples with LCM by default: 4 steps, the guidance scale embedded as timestep_cond', async () => {
    const { images, progress, models } = await serve('lcm_unet', { numInferenceSteps: 0, streamProgress: true, steps: ['stir the pot'] });
    assert.equal(images.length, 1);
    assert.equal(progress, 4);
    assert.deepEqual(models[0].defaults, { scheduler: 'lcm', numInferenceSteps: 4, guidanceScale: 8, imageGuidanceScale: 1 });
  });

  test('an inpainting UNet is refused, naming the 9 channels and what to serve instead', async () => {
    assert.match(await refusal('inpainting_unet'), /unet\/model\.onnx takes 9 input channels: an inpainting UNet.*Serve a text-to-image UNet/);
  });

  test('the converter rewrites a scalar-timestep UNet to [batch] with the same outputs, row by row', async (t) => {
    if ('skip' in variants) return;
    const source = join(variants.bundle('optimum_scalar_timestep'), 'unet', 'model.onnx');
    const target = join(variants.bundle('optimum_scalar_timestep'), 'unet', 'model.per_row.onnx');
    execFileSync('/usr/bin/python3', ['-m', 'stepframe_train.onnx_tools.timestep_per_row', source, target], { cwd: join(REPO_ROOT, 'training') });
    const pool = new SessionPool({ ...TEST_SESSION_SETTINGS, executors: 1 });
    t.after(() => pool.dispose());
    const scalar = await pool.load(source, 'unet');
    const perRow = await pool.load(target, 'unet');
    assert.equal(scalar.inputRank('timestep'), 0);
    assert.equal(perRow.inputRank('timestep'), 1);
    const rows = 4;
    const timesteps = [981, 601, 261, 1];
    const sample = Float32Array.from({ length: rows * 4 * 16 * 16 }, (_, i) => Math.sin(i * 0.37));
    const hidden = Float32Array.from({ length: rows * 77 * 32 }, (_, i) => Math.cos(i * 0.11) * 0.5);
    const batched = await perRow.run({
      sample: { type: 'float32', data: sample, dims: [rows, 4, 16, 16] },
      timestep: { type: 'float32', data: Float32Array.from(timesteps), dims: [rows] },
      encoder_hidden_states: { type: 'float32', data: hidden, dims: [rows, 77, 32] },
    });
    const rowSize = 4 * 16 * 16;
    for (let r = 0; r < rows; r++) {
      const alone = await scalar.run({
        sample: { type: 'float32', data: sample.slice(r * rowSize, (r + 1) * rowSize), dims: [1, 4, 16, 16] },
        timestep: { type: 'float32', data: Float32Array.of(timesteps[r]), dims: [] },
        encoder_hidden_states: { type: 'float32', data: hidden.slice(r * 77 * 32, (r + 1) * 77 * 32), dims: [1, 77, 32] },
      });
      const got = batched.out_sample.data.subarray(r * rowSize, (r + 1) * rowSize);
      let maxError = 0;
      for (let k = 0; k < rowSize; k++) maxError = Math.max(maxError, Math.abs(got[k] - alone.out_sample.data[k]));
      assert.ok(maxError <= 1e-5, `row ${r} (t=${timesteps[r]}): max abs error ${maxError}`);
    }
  });
});
