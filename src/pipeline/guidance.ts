/**
 * Classifier-free guidance over the UNet's rows for one sequence.
 *
 * Two rows [c, ∅]:             ε = ε_∅ + s (ε_c − ε_∅)
 * Three rows [c_T c_I, ∅ c_I, ∅ ∅] (InstructPix2Pix, Brooks et al. 2023, eq. 3):
 *                              ε = ε_∅∅ + s_I (ε_∅I − ε_∅∅) + s_T (ε_TI − ε_∅I)
 * Two rows [c_T c_I, ∅ c_I]:   the three-row formula at s_I = 1, where ε_∅∅'s weight is exactly 0:
 *                              ε = ε_∅I + s_T (ε_TI − ε_∅I), a third fewer UNet rows for the same result
 * One row: no guidance (scale ≤ 1), as diffusers skips it.
 */
export type GuidanceMode = 'none' | 'text' | 'text_given_image' | 'text_and_image';

export function guidanceRows(mode: GuidanceMode): number {
  return mode === 'none' ? 1 : mode === 'text_and_image' ? 3 : 2;
}

export function combineGuidance(output: Float32Array, mode: GuidanceMode, textScale: number, imageScale: number): Float32Array {
  const rows = guidanceRows(mode);
  const size = output.length / rows;
  if (mode === 'none') return output;
  const result = new Float32Array(size);
  if (mode === 'text' || mode === 'text_given_image') {
    for (let i = 0; i < size; i++) {
      const uncond = output[size + i];
      result[i] = uncond + textScale * (output[i] - uncond);
    }
    return result;
  }
  for (let i = 0; i < size; i++) {
    const full = output[i];
    const imageOnly = output[size + i];
    const uncond = output[2 * size + i];
    result[i] = uncond + imageScale * (imageOnly - uncond) + textScale * (full - imageOnly);
  }
  return result;
}
