import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { float16BitsToFloat32, float32ToFloat16Bits, fromFloat16Array, toFloat16Array } from '../../../src/pipeline/execution/float16.js';

const hex = (bits: number) => `0x${bits.toString(16).padStart(4, '0')}`;

describe('float16 conversions at the model boundary', () => {
  test('exactly representable values round-trip, with their IEEE bit patterns', () => {
    const cases: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -15, 0x0200], // a subnormal
      [1 + 2 ** -10, 0x3c01],
    ];
    for (const [value, bits] of cases) {
      assert.equal(hex(float32ToFloat16Bits(value)), hex(bits), String(value));
      assert.ok(Object.is(float16BitsToFloat32(bits), value), `${hex(bits)} -> ${float16BitsToFloat32(bits)}`);
    }
  });

  test('rounds to nearest, ties to even, in normals and subnormals', () => {
    const ulp = 2 ** -10;
    assert.equal(hex(float32ToFloat16Bits(1 + ulp / 2)), '0x3c00'); // tie, 0x3c00 is even
    assert.equal(hex(float32ToFloat16Bits(1 + (3 * ulp) / 2)), '0x3c02'); // tie, rounds up to even
    assert.equal(hex(float32ToFloat16Bits(1 + ulp / 2 + 2 ** -20)), '0x3c01'); // above the tie
    assert.equal(hex(float32ToFloat16Bits(2 ** -25)), '0x0000'); // half the smallest subnormal: tie to even (zero)
    assert.equal(hex(float32ToFloat16Bits(2 ** -25 * 1.5)), '0x0001');
    assert.equal(hex(float32ToFloat16Bits(3 * 2 ** -25)), '0x0002'); // 1.5 subnormal ulps: tie to even
    assert.equal(hex(float32ToFloat16Bits(2 ** -26)), '0x0000');
    assert.equal(hex(float32ToFloat16Bits(-(2 ** -26))), '0x8000'); // keeps the sign
    // The largest subnormal rounds up into the smallest normal.
    assert.equal(hex(float32ToFloat16Bits(2 ** -14 - 2 ** -26)), '0x0400');
  });

  test('overflow goes to infinity; infinities and NaN are kept', () => {
    assert.equal(hex(float32ToFloat16Bits(65520)), '0x7c00'); // halfway past 65504 rounds to even: Inf
    assert.equal(hex(float32ToFloat16Bits(65519)), '0x7bff');
    assert.equal(hex(float32ToFloat16Bits(1e10)), '0x7c00');
    assert.equal(hex(float32ToFloat16Bits(-Infinity)), '0xfc00');
    const nan = float32ToFloat16Bits(NaN);
    assert.equal(nan & 0x7c00, 0x7c00);
    assert.notEqual(nan & 0x03ff, 0);
    assert.ok(Number.isNaN(float16BitsToFloat32(nan)));
    assert.equal(float16BitsToFloat32(0x7c00), Infinity);
  });

  test('every float16 value survives float32 and back bit for bit', () => {
    for (let bits = 0; bits < 65536; bits++) {
      const value = float16BitsToFloat32(bits);
      if (Number.isNaN(value)) continue;
      assert.equal(float32ToFloat16Bits(value), bits, hex(bits));
    }
  });

  test('array conversions agree with the scalar ones and stay within half an ulp', () => {
    const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 10 ** ((i % 9) - 4));
    const back = fromFloat16Array(toFloat16Array(values));
    values.forEach((v, i) => {
      const exponent = Math.max(Math.floor(Math.log2(Math.abs(v) || 2 ** -24)), -14);
      assert.ok(Math.abs(back[i] - v) <= 2 ** (exponent - 11) + 1e-12, `${v} -> ${back[i]}`);
    });
  });
});
