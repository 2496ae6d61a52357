import assert from 'node:assert/strict';
import { relative } from 'node:path';
import { after, describe, test } from 'node:test';

import { SessionPool } from '../../../src/pipeline/bundle/sessionPool.js';
import { TEST_SESSION_SETTINGS } from '../../helpers/engineSettings.js';
import { parityFiles, replayParity } from '../../helpers/parityReplay.js';
import { FIXTURE_BUNDLES, SEQUENCE_FIXTURE_BUNDLES } from '../../helpers/paths.js';

describe('ONNX exports reproduce PyTorch (parity fixtures written by training/)', () => {
  const pool = new SessionPool(TEST_SESSION_SETTINGS);
  after(() => pool.dispose());
  const files = parityFiles(FIXTURE_BUNDLES);

  test('every exported component has a parity fixture', () => {
    // 4 shared components, 6 UNets and 5 fusers (the baseline has none).
    assert.equal(files.length, 15, files.map((f) => relative(FIXTURE_BUNDLES, f)).join(', '));
  });

  for (const file of files) {
    test(relative(FIXTURE_BUNDLES, file), () => replayParity(pool, file));
  }
});

describe('the sequence fusers\' exports reproduce PyTorch: a first-frame fuser\'s six inputs, a decoupled UNet\'s longer context', () => {
  const pool = new SessionPool(TEST_SESSION_SETTINGS);
  after(() => pool.dispose());
  const files = parityFiles(SEQUENCE_FIXTURE_BUNDLES);

  test('every exported component has a parity fixture', () => {
    // 4 shared components, 3 UNets and 3 fusers.
    assert.equal(files.length, 10, files.map((f) => relative(SEQUENCE_FIXTURE_BUNDLES, f)).join(', '));
  });

  for (const file of files) {
    test(relative(SEQUENCE_FIXTURE_BUNDLES, file), () => replayParity(pool, file));
  }
});
