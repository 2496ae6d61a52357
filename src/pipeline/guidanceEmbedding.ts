/**
 * LCM's guidance-scale embedding (diffusers' get_guidance_scale_embedding, after the sinusoidal
 * timestep embedding of Ho et al.): for w = guidance_scale − 1, the vector
 * [sin(1000 w ω_j), cos(1000 w ω_j)] with ω_j = 10000^(−j / (d/2 − 1)), j < d/2, zero-padded to
 * an odd width d. An LCM UNet takes it as `timestep_cond` and was distilled to follow guidance
 * without the unconditional row.
 */
export function guidanceScaleEmbedding(guidanceScale: number, width: number): Float32Array {
  const w = (guidanceScale - 1) * 1000;
  const half = Math.floor(width / 2);
  const step = Math.log(10000) / (half - 1);
  const out = new Float32Array(width);
  for (let j = 0; j < half; j++) {
    const angle = w * Math.exp(-j * step);
    out[j] = Math.sin(angle);
    out[half + j] = Math.cos(angle);
  }
  return out;
}
