/**
 * IEEE 754 binary16 conversions at the model boundary. The host math stays in float32; models
 * exported in float16 (Optimum `--dtype fp16`) get their inputs rounded here and their outputs
 * widened here. onnxruntime-node holds float16 tensors as raw bits in a Uint16Array.
 */

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** float32 → float16 bits, rounding to nearest even; overflow goes to ±Inf, NaN stays NaN, tiny values become subnormals or ±0. */
export function float32ToFloat16Bits(value: number): number {
  scratch[0] = value;
  const bits = scratchBits[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return mantissa === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mantissa >>> 13);
  // The exponent rebased from float32's bias (127) to float16's (15).
  const halfExponent = exponent - 112;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal in float16 (or zero): value = M · 2^-24 with M the 24-bit significand shifted right.
    if (halfExponent < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    return sign | roundShift(significand, shift);
  }
  // Normal: a carry out of the mantissa correctly bumps the exponent (up to Inf).
  return (sign | (halfExponent << 10) | (mantissa >>> 13)) + roundingCarry(mantissa, 13, mantissa >>> 13);
}

function roundShift(value: number, shift: number): number {
  const kept = value >>> shift;
  return kept + roundingCarry(value, shift, kept);
}

/** 1 when the dropped low `shift` bits round the kept part up (ties to even). */
function roundingCarry(value: number, shift: number, kept: number): number {
  const half = 1 << (shift - 1);
  const dropped = value & ((1 << shift) - 1);
  return dropped > half || (dropped === half && (kept & 1) === 1) ? 1 : 0;
}

/** Every float16 bit pattern's value, built once (256 KiB): widening is one lookup per element. */
const HALF_TO_FLOAT = (() => {
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >>> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    if (exponent === 0) table[bits] = sign * mantissa * 2 ** -24;
    else if (exponent === 0x1f) table[bits] = mantissa === 0 ? sign * Infinity : NaN;
    else table[bits] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return table;
})();

export function float16BitsToFloat32(bits: number): number {
  return HALF_TO_FLOAT[bits & 0xffff];
}

export function toFloat16Array(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]);
  return out;
}

export function fromFloat16Array(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = HALF_TO_FLOAT[bits[i]];
  return out;
}
