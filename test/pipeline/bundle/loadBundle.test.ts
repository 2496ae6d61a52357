import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { BundleLoader, declaredDefaultModel, findBundleDirs } from '../../../src/pipeline/bundle/loadBundle.js';
import { Engine } from '../../../src/pipeline/engine.js';
import { SessionPool } from '../../../src/pipeline/bundle/sessionPool.js';
import { BundleError } from '../../../src/pipeline/errors.js';
import { TEST_SESSION_SETTINGS } from '../../helpers/engineSettings.js';
import { FIXTURE_BUNDLES, REPO_ROOT } from '../../helpers/paths.js';
import { scratchCopy } from '../../helpers/scratchBundles.js';

/** Renames a tensor inside a serialized ONNX file; same-length names keep the protobuf valid. */
function renameTensor(file: string, from: string, to: string): void {
  assert.equal(from.length, to.length);
  const bytes = readFileSync(file);
  writeFileSync(file, Buffer.from(bytes.toString('latin1').split(from).join(to), 'latin1'));
}

describe('bundle loading', () => {
  const pool = new SessionPool(TEST_SESSION_SETTINGS);
  after(() => pool.dispose());

  test('finds all six fixture bundles and loads each', async () => {
    const loader = new BundleLoader(pool);
    const dirs = await findBundleDirs(FIXTURE_BUNDLES);
    assert.deepEqual(dirs.map((d) => d.split('/').pop()), ['attend_to_image', 'attend_to_text', 'baseline', 'concatenation', 'image_pooling', 'text_pooling']);
    for (const dir of dirs) {
      const bundle = await loader.load(dir);
      assert.equal(bundle.manifest.name, dir.split('/').pop());
      assert.equal(bundle.fuser === null, bundle.manifest.fuserKind === 'baseline');
    }
  });

  test('shared components are loaded once across bundles', async (t) => {
    const localPool = new SessionPool(TEST_SESSION_SETTINGS);
    t.after(() => localPool.dispose());
    const loader = new BundleLoader(localPool);
    const a = await loader.load(join(FIXTURE_BUNDLES, 'concatenation'));
    const b = await loader.load(join(FIXTURE_BUNDLES, 'attend_to_text'));
    assert.equal(a.textEncoder, b.textEncoder);
    assert.equal(a.vaeDecoder, b.vaeDecoder);
    assert.equal(a.tokenizer, b.tokenizer);
    assert.notEqual(a.unet, b.unet);
    // text encoder, image encoder and VAE decoder once, plus each bundle's UNet and fuser
    assert.equal(localPool.size, 7);
  });

  test('a UNet with a wrong tensor name fails to load, naming the file and the tensor', async (t) => {
    const dir = scratchCopy(t);
    renameTensor(join(dir, 'concatenation', 'unet', 'model.onnx'), 'timestep', 'timestap');
    // The edit changes the file's sha256, so verification is off to reach the contract check.
    const logs: string[] = [];
    const loader = new BundleLoader(pool, { verifyWeights: false, log: (message) => logs.push(message) });
    await assert.rejects(loader.load(join(dir, 'concatenation')), (error: unknown) => {
      assert.ok(error instanceof BundleError);
      assert.match(error.message, /concatenation\/unet\/model\.onnx: missing input 'timestep'/);
      return true;
    });
    assert.deepEqual(logs, ['weights not verified (verification is off)']);
  });

  test('a UNet with flipped weight bytes (same size) is refused, naming the file and both hashes', async (t) => {
    const dir = scratchCopy(t);
    const file = join(dir, 'concatenation', 'unet', 'model.onnx');
    const bytes = readFileSync(file);
    const at = Math.floor(bytes.length * 0.6);
    for (let i = at; i < at + 64; i++) bytes[i] ^= 0xff;
    writeFileSync(file, bytes);
    const recorded = JSON.parse(readFileSync(join(dir, 'concatenation', 'stepframe.json'), 'utf8')).components.unet.sha256 as string;
    await assert.rejects(new BundleLoader(pool).load(join(dir, 'concatenation')), (error: unknown) => {
      assert.ok(error instanceof BundleError);
      assert.match(error.message, /^bundle concatenation: components\.unet: .*concatenation\/unet\/model\.onnx has sha256 [0-9a-f]{64}, but stepframe\.json records [0-9a-f]{64}/);
      assert.ok(error.message.includes(recorded));
      return true;
    });
  });

  test('a file ONNX Runtime cannot parse is reported once as that, not as an unavailable provider', async (t) => {
    const dir = scratchCopy(t);
    writeFileSync(join(dir, 'baseline', 'unet', 'model.onnx'), Buffer.from('this is not an ONNX graph'));
    const logs: string[] = [];
    const settings = { ...TEST_SESSION_SETTINGS, executionProviders: ['cuda', 'cpu'], log: (message: string) => logs.push(message) };
    const cudaPool = new SessionPool(settings);
    t.after(() => cudaPool.dispose());
    await assert.rejects(new BundleLoader(cudaPool, { verifyWeights: false }).load(join(dir, 'baseline')), (error: unknown) => {
      assert.ok(error instanceof BundleError);
      assert.match(error.message, /baseline\/unet\/model\.onnx: ONNX Runtime cannot load this model \(cpu: /);
      return true;
    });
    assert.equal(logs.filter((m) => /unavailable/.test(m)).length, logs.filter((m) => /cuda is unavailable; running on cpu/.test(m)).length);
  });

  test('a manifest with a bad field fails to load, naming the field', async (t) => {
    const dir = scratchCopy(t);
    const file = join(dir, 'image_pooling', 'stepframe.json');
    const manifest = JSON.parse(readFileSync(file, 'utf8'));
    manifest.latent.scaling_factor = 'big';
    writeFileSync(file, JSON.stringify(manifest));
    await assert.rejects(new BundleLoader(pool).load(join(dir, 'image_pooling')), /stepframe\.json: latent\.scaling_factor must be number, got "big"/);
  });

  test('a plain Optimum-layout folder (no stepframe.json) loads as the baseline', async (t) => {
    const dir = scratchCopy(t);
    const optimum = join(dir, 'optimum_sd');
    for (const component of ['text_encoder', 'vae_decoder']) cpSync(join(dir, 'shared', component, 'model.onnx'), join(optimum, component, 'model.onnx'));
    cpSync(join(dir, 'baseline', 'unet'), join(optimum, 'unet'), { recursive: true });
    cpSync(join(dir, 'baseline', 'scheduler'), join(optimum, 'scheduler'), { recursive: true });
    cpSync(join(REPO_ROOT, 'models', 'shared', 'tokenizer'), join(optimum, 'tokenizer'), { recursive: true });
    writeFileSync(join(optimum, 'unet', 'config.json'), JSON.stringify({ sample_size: 16 }));
    writeFileSync(join(optimum, 'vae_decoder', 'config.json'), JSON.stringify({ scaling_factor: 0.18215 }));
    const logs: { message: string; fields?: Record<string, unknown> }[] = [];
    const bundle = await new BundleLoader(pool, { log: (message, fields) => logs.push({ message, fields }) }).load(optimum);
    assert.deepEqual(logs.map((l) => l.message), ['weights not verified: the manifest records no sha256']);
    assert.equal(bundle.manifest.synthesized, true);
    assert.equal(bundle.manifest.fuserKind, 'baseline');
    // SD's VAE downsamples 8x: a 16x16 latent UNet means 128x128 images.
    assert.equal(bundle.manifest.height, 128);
    assert.equal(bundle.fuser, null);
  });
});

describe('the default bundle a models folder declares', () => {
  test('default-model.json names it; without the file none is declared; a bad file is refused by name', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'stepframe-default-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    assert.equal(await declaredDefaultModel(dir), undefined);
    writeFileSync(join(dir, 'default-model.json'), JSON.stringify({ model: 'concatenation', criterion: 'lowest CLIP comparison score on val' }));
    assert.equal(await declaredDefaultModel(dir), 'concatenation');
    writeFileSync(join(dir, 'default-model.json'), JSON.stringify({ criterion: 'forgot the model' }));
    await assert.rejects(declaredDefaultModel(dir), (e: unknown) => e instanceof BundleError && /default-model\.json: "model" must name a bundle/.test(e.message));
  });

  test('the engine serves the declared default, and a configured one wins over it', async (t) => {
    const dir = scratchCopy(t);
    writeFileSync(join(dir, 'default-model.json'), JSON.stringify({ model: 'concatenation' }));
    const declared = await Engine.create({ modelsDir: dir, session: TEST_SESSION_SETTINGS, batch: { maxBatch: 4, maxQueueDelayMs: 1 }, admission: { maxActiveSequences: 1, maxQueuedSequences: 1 } });
    t.after(() => declared.dispose());
    assert.equal(declared.defaultModel, 'concatenation');
    const configured = await Engine.create({ modelsDir: dir, defaultModel: 'baseline', session: TEST_SESSION_SETTINGS, batch: { maxBatch: 4, maxQueueDelayMs: 1 }, admission: { maxActiveSequences: 1, maxQueuedSequences: 1 } });
    t.after(() => configured.dispose());
    assert.equal(configured.defaultModel, 'baseline');
  });

  test('the shipped models folder declares its default with the criterion and the command that chose it', () => {
    const declared = JSON.parse(readFileSync(join(REPO_ROOT, 'models', 'default-model.json'), 'utf8'));
    assert.equal(typeof declared.model, 'string');
    assert.match(declared.criterion, /val/);
    assert.match(declared.command, /npm run eval/);
    const scores = declared.clip_comparison_on_val as Record<string, number>;
    assert.equal(Object.entries(scores).sort((a, b) => a[1] - b[1])[0][0], declared.model, 'the declared bundle is the one its criterion picks');
  });
});
