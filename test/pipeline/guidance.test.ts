import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { BundleRuntime } from '../../src/pipeline/bundleRuntime.js';
import { combineGuidance, guidanceRows } from '../../src/pipeline/guidance.js';
import { guidanceScaleEmbedding } from '../../src/pipeline/guidanceEmbedding.js';
import { guidanceMode } from '../../src/pipeline/sequenceLoop.js';
import { sequenceRequest } from '../helpers/testEngine.js';

test('two-row guidance: uncond + s (cond - uncond)', () => {
  const out = Float32Array.from([1, 2, /* uncond */ 0.5, 1]);
  assert.deepEqual(Array.from(combineGuidance(out, 'text', 3, 1)), [2, 4]);
});

test('three-row guidance: uncond + s_I (image - uncond) + s_T (full - image)', () => {
  const out = Float32Array.from([/* full */ 4, /* image only */ 2, /* uncond */ 1]);
  assert.deepEqual(Array.from(combineGuidance(out, 'text_and_image', 2, 1.5)), [1 + 1.5 * 1 + 2 * 2]);
});

test('at image scale 1 the three-row formula needs only its first two rows, whose result it is', () => {
  const full = Float32Array.from([4, -0.3, 7.25]);
  const imageOnly = Float32Array.from([2, 0.9, -1.5]);
  const uncond = Float32Array.from([1, 100, -50]); // any value: its weight is exactly 0
  const three = combineGuidance(Float32Array.from([...full, ...imageOnly, ...uncond]), 'text_and_image', 4, 1);
  const two = combineGuidance(Float32Array.from([...full, ...imageOnly]), 'text_given_image', 4, 1);
  two.forEach((v, i) => assert.ok(Math.abs(v - three[i]) < 1e-5, `${i}: ${v} vs ${three[i]}`));
  assert.equal(guidanceRows('text_given_image'), 2);
});

test('a request at image scale 1 gets the two-row mode; other scales three rows, and unset one', () => {
  const runtime = { guidanceEmbeddingWidth: null, bundle: { manifest: { imageGuidance: true, fuserKind: 'concatenation' } } } as unknown as BundleRuntime;
  assert.equal(guidanceMode(runtime, sequenceRequest({ imageGuidanceScale: 1 })), 'text_given_image');
  assert.equal(guidanceMode(runtime, sequenceRequest({ imageGuidanceScale: 1.5 })), 'text_and_image');
  assert.equal(guidanceMode(runtime, sequenceRequest({ imageGuidanceScale: null })), 'text');
  assert.equal(guidanceMode(runtime, sequenceRequest({ imageGuidanceScale: 1, guidanceScale: 1 })), 'none');
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
