/**
 * The paper's method on Stable Diffusion's real architecture, end to end at a tiny size: the SD 1.x
 * folder and CLIP vision tower in training/tests/fixtures/sd_reference (diffusers' and transformers'
 * layouts) are fine-tuned for a few steps on 2 recipes of the recipe world (npm run sd:finetune),
 * exported with and without the run (npm run sd:export), and served by a real server over gRPC.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';

import sharp from 'sharp';

import { StepframeClient } from '../../clients/typescript/stepframeClient.js';
import { SessionPool } from '../../src/pipeline/bundle/sessionPool.js';
import { parseConfig } from '../../src/server/config.js';
import { createLogger } from '../../src/server/logger.js';
import { startServer } from '../../src/server/stepframeServer.js';
import { TEST_SESSION_SETTINGS } from '../helpers/engineSettings.js';
import { parityFiles, replayParity } from '../helpers/parityReplay.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { psnr } from '../helpers/testEngine.js';

const TRAINING = join(REPO_ROOT, 'training');
const SD = join(TRAINING, 'tests', 'fixtures', 'sd_reference', 'sd');
const CLIP = join(TRAINING, 'tests', 'fixtures', 'sd_reference', 'clip-vision');

function python(module: string, args: string[]): string {
  return execFileSync('/usr/bin/python3', ['-m', module, ...args], { cwd: TRAINING, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const skip = (() => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch, onnx'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'needs /usr/bin/python3 with Debian\'s python3-torch and python3-onnx (bash .ci/run installs them)';
  }
})();

/** Two recipes of the recipe world's test split, in the layout sd:finetune and `stepframe eval` read. */
function twoRecipeSplit(dir: string): void {
  const world = join(TRAINING, 'world_test');
  const recipes = (JSON.parse(readFileSync(join(world, 'recipes.json'), 'utf8')) as { recipes: { steps: { image: string }[] }[] }).recipes.slice(0, 2);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'recipes.json'), JSON.stringify({ recipes }));
  for (const step of recipes.flatMap((r) => r.steps)) copyFileSync(join(world, step.image), join(dir, step.image));
}

async function generate(modelDir: string, model: string, steps: string[]): Promise<{ images: Buffer[]; models: { name: string; fuserKind: string }[] }> {
  const config = parseConfig(['--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--model-dir', modelDir, '--execution-providers', 'cpu',
    '--executors', '1', '--intra-op-threads', '1', '--drain-timeout-s', '5'], {});
  const server = await startServer(config, createLogger('error', () => undefined));
  try {
    await server.ready;
    const client = new StepframeClient(`127.0.0.1:${server.port}`);
    try {
      const { images } = await client.collect({ steps, model, seed: 5n, numInferenceSteps: 3 });
      const models = await new Promise<{ name: string; fuserKind: string }[]>((resolve, reject) =>
        client.raw.listModels({}, (error, response) => (error ? reject(error) : resolve(response!.models))));
      return { images: images.map((i) => Buffer.from(i.data)), models };
    } finally {
      client.close();
    }
  } finally {
    await server.shutdown();
  }
}

describe('SD checkpoints: fine-tuned with a fuser, exported, served over gRPC', { skip }, () => {
  let root = '';
  let models = '';
  let fp16 = '';
  let run = '';
  let log = '';
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'stepframe-sd-'));
    models = join(root, 'models');
    fp16 = join(root, 'fp16');
    run = join(root, 'run');
    twoRecipeSplit(join(root, 'split'));
    log = python('stepframe_train.sd.finetune', ['--base', SD, '--image-encoder', CLIP, '--data', join(root, 'split'), '--fuser', 'concatenation',
      '--out', run, '--steps', '4', '--batch', '2', '--log-every', '2', '--style-weight', '0.5']);
    python('stepframe_train.sd.export', ['--base', SD, '--image-encoder', CLIP, '--run', run, '--out', models, '--name', 'sd-concatenation',
      '--external-data', '--parity', '5']);
    python('stepframe_train.sd.export', ['--base', SD, '--out', models, '--name', 'sd-baseline']);
    python('stepframe_train.sd.export', ['--base', SD, '--image-encoder', CLIP, '--run', run, '--out', fp16, '--name', 'sd-concatenation', '--fp16']);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('the fine-tuning shows its loss and writes a resumable checkpoint', () => {
    assert.match(log, /step 4\/4 loss \d+\.\d+ \(denoise \d+\.\d+, style \d+\.\d+\)/);
    const resumed = python('stepframe_train.sd.finetune', ['--base', SD, '--image-encoder', CLIP, '--data', join(root, 'split'), '--fuser',
      'concatenation', '--out', run, '--steps', '4', '--batch', '2']);
    assert.match(resumed, /resumed .* at step 4\/4/);
  });

  test('every exported component reproduces PyTorch within 1e-4 of its largest output', async () => {
    const pool = new SessionPool(TEST_SESSION_SETTINGS);
    try {
      const files = parityFiles(join(models, 'sd-concatenation'));
      assert.deepEqual(files.map((f) => relative(join(models, 'sd-concatenation'), f).split('/')[0]).sort(),
        ['fuser', 'image_encoder', 'text_encoder', 'unet', 'vae_decoder', 'vae_encoder']);
      for (const file of files) await replayParity(pool, file);
    } finally {
      await pool.dispose();
    }
  });

  test('the fine-tuned bundle and the base\'s baseline stream sequences from a real server', async () => {
    const concat = await generate(models, 'sd-concatenation', ['chop the carrots', 'add the carrots to the pan']);
    assert.deepEqual(concat.models.map((m) => [m.name, m.fuserKind]).sort(), [['sd-baseline', 'baseline'], ['sd-concatenation', 'concatenation']]);
    assert.equal(concat.images.length, 2);
    for (const png of concat.images) assert.deepEqual([(await sharp(png).metadata()).width, (await sharp(png).metadata()).height], [32, 32]);
    const baseline = await generate(models, 'sd-baseline', ['stir']);
    assert.equal(baseline.images.length, 1);
  });

  test('every weight file is hashed in stepframe.json, external data included', () => {
    const manifest = JSON.parse(readFileSync(join(models, 'sd-concatenation', 'stepframe.json'), 'utf8')) as {
      components: Record<string, { sha256: string; external_data?: { path: string; sha256: string }[] }>;
    };
    for (const [name, spec] of Object.entries(manifest.components)) {
      assert.match(spec.sha256, /^[0-9a-f]{64}$/, name);
      assert.equal(spec.external_data?.length, 1, `${name} keeps its weights in model.onnx_data (--external-data)`);
      assert.match(spec.external_data![0].sha256, /^[0-9a-f]{64}$/);
    }
  });

  test('a flipped byte in a UNet\'s external data is refused at load, naming the file', async () => {
    const corrupt = join(root, 'corrupt');
    cpSync(join(models, 'sd-concatenation'), join(corrupt, 'sd-concatenation'), { recursive: true });
    const data = join(corrupt, 'sd-concatenation', 'unet', 'model.onnx_data');
    const bytes = readFileSync(data);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(data, bytes);
    await assert.rejects(generate(corrupt, 'sd-concatenation', ['stir']), /unet\/model\.onnx_data has sha256 .* but stepframe\.json records/);
  });

  test('the fp16 export decodes images within 40 dB PSNR of the fp32 export', async () => {
    const steps = ['chop the carrots', 'add the carrots to the pan'];
    const full = await generate(models, 'sd-concatenation', steps);
    const half = await generate(fp16, 'sd-concatenation', steps);
    for (let i = 0; i < steps.length; i++) {
      const [a, b] = await Promise.all([full.images[i], half.images[i]].map((png) => sharp(png).raw().toBuffer()));
      const db = psnr(new Uint8Array(a), new Uint8Array(b));
      assert.ok(db >= 40, `step ${i + 1}: ${db.toFixed(1)} dB`);
    }
  });
});
