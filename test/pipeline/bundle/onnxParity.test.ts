import assert from 'node:assert/strict';
import { relative } from 'node:path';
import { after, describe, test } from 'node:test';

import { SessionPool } from '../../../src/pipeline/bundle/sessionPool.js';
import { TEST_SESSION_SETTINGS } from '../../helpers/engineSettings.js';
import { parityFiles, replayParity } from '../../helpers/parityReplay.js';
import { FIXTURE_BUNDLES, SEQUENCE_FIXTURE_BUNDLES } from '../../helpers/paths.js';

// The paper's six, and the fusers beyond it (a first-frame fuser's six inputs, a decoupled UNet's longer context).
const FIXTURE_SETS = [
  // 4 shared components, 6 UNets and 5 fusers (the baseline has none).
  { name: 'the paper\'s fusers', dir: FIXTURE_BUNDLES, files: 15 },
  // 4 shared components, 3 UNets and 3 fusers.
  { name: 'the sequence fusers', dir: SEQUENCE_FIXTURE_BUNDLES, files: 10 },
];

for (const set of FIXTURE_SETS) {
  describe(`ONNX exports reproduce PyTorch, ${set.name} (parity fixtures written by training/)`, () => {
    const pool = new SessionPool(TEST_SESSION_SETTINGS);
    after(() => pool.dispose());
    const files = parityFiles(set.dir);

    test('every exported component has a parity fixture', () => {
      assert.equal(files.length, set.files, files.map((f) => relative(set.dir, f)).join(', '));
    });

    for (const file of files) {
      test(relative(set.dir, file), () => replayParity(pool, file));
    }
  });
}
