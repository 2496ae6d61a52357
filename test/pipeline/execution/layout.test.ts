/** The executor layout chosen by model size where the flags leave it open (--executors 0). */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { SessionPool } from '../../../src/pipeline/bundle/sessionPool.js';
import { LARGE_UNET_BYTES, largestUnetBytes, layoutFor } from '../../../src/pipeline/execution/layout.js';
import { TEST_SESSION_SETTINGS } from '../../helpers/engineSettings.js';
import { FIXTURE_BUNDLES } from '../../helpers/paths.js';

const AUTO = { ...TEST_SESSION_SETTINGS, executors: 0, intraOpNumThreads: 1, mode: 'workers' as const };

describe('executor layout by model size', () => {
  test('a small UNet (the miniature) keeps one one-thread executor per core', () => {
    const { settings } = layoutFor(AUTO, 2 * 2 ** 20, 8);
    assert.equal(settings.largeModels, undefined);
    assert.equal(settings.intraOpNumThreads, 1);
  });

  test('a real-size UNet (SD 1.5: 3.4 GB) gets one executor using every core', () => {
    const { settings, rule } = layoutFor(AUTO, 3.4e9, 8);
    assert.equal(settings.largeModels, true);
    assert.equal(settings.intraOpNumThreads, 8);
    assert.match(rule, /UNet 3242 MiB >= 256 MiB: one executor with 8 intra-op threads/);
  });

  test('--executors N and main-thread mode override the rule', () => {
    assert.deepEqual(layoutFor({ ...AUTO, executors: 2 }, 3.4e9, 8).settings, { ...AUTO, executors: 2 });
    assert.deepEqual(layoutFor({ ...AUTO, mode: 'main-thread' }, 3.4e9, 8).settings, { ...AUTO, mode: 'main-thread' });
  });

  test('the size is the largest unet/ folder, external data included', (t) => {
    const root = mkdtempSync(join(tmpdir(), 'stepframe-layout-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    for (const [name, bytes] of [['small', 1000], ['large', LARGE_UNET_BYTES + 1]] as const) {
      mkdirSync(join(root, name, 'unet'), { recursive: true });
      writeFileSync(join(root, name, 'unet', 'model.onnx'), 'graph');
      writeFileSync(join(root, name, 'unet', 'model.onnx_data'), '');
      truncateSync(join(root, name, 'unet', 'model.onnx_data'), bytes); // sparse: no real disk used
    }
    assert.equal(largestUnetBytes([join(root, 'small'), join(root, 'large'), join(root, 'none')]), LARGE_UNET_BYTES + 1 + 5);
    assert.ok(largestUnetBytes([join(FIXTURE_BUNDLES, 'concatenation')]) < LARGE_UNET_BYTES);
  });

  test('with large models on CPU the pool starts one executor, whatever the core count', async (t) => {
    const pool = new SessionPool({ ...AUTO, largeModels: true, executionProviders: ['cpu'] });
    t.after(() => pool.dispose());
    await pool.load(join(FIXTURE_BUNDLES, 'shared', 'text_encoder', 'model.onnx'), 'text_encoder');
    assert.equal(pool.executors.size, 1);
  });
});
