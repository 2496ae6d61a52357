import assert from 'node:assert/strict';
import { test } from 'node:test';

import { combineGuidance } from '../../src/pipeline/guidance.js';

test('two-row guidance: uncond + s (cond - uncond)', () => {
  const out = Float32Array.from([1, 2, /* uncond */ 0.5, 1]);
  assert.deepEqual(Array.from(combineGuidance(out, 'text', 3, 1)), [2, 4]);
});

test('three-row guidance: uncond + s_I (image - uncond) + s_T (full - image)', () => {
  const out = Float32Array.from([/* full */ 4, /* image only */ 2, /* uncond */ 1]);
  assert.deepEqual(Array.from(combineGuidance(out, 'text_and_image', 2, 1.5)), [1 + 1.5 * 1 + 2 * 2]);
});

test('without guidance the single row passes through', () => {
  const out = Float32Array.from([0.25, -1]);
  assert.equal(combineGuidance(out, 'none', 7.5, 1), out);
});
