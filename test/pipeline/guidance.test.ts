import assert from 'node:assert/strict';
import { test } from 'node:test';

import { combineGuidance } from '../../src/pipeline/guidance.js';
import { guidanceScaleEmbedding } from '../../src/pipeline/guidanceEmbedding.js';

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

test('LCM guidance embedding: [sin, cos] of 1000 (s - 1) at geometric frequencies, zero-padded to an odd width', () => {
  const e = guidanceScaleEmbedding(2, 4);
  const expected = [Math.sin(1000), Math.sin(0.1), Math.cos(1000), Math.cos(0.1)];
  e.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `${i}: ${v} vs ${expected[i]}`));
  const odd = guidanceScaleEmbedding(8.5, 5);
  assert.equal(odd.length, 5);
  assert.equal(odd[4], 0);
  // Guidance 1 (w = 0): sines 0, cosines 1.
  assert.deepEqual(Array.from(guidanceScaleEmbedding(1, 4)), [0, 0, 1, 1]);
});
