/** Summary of one metric: the mean over frames, its spread, and a 95% interval bootstrapped over recipes. */
export interface Summary {
  mean: number;
  std: number;
  ci95: [number, number];
  frames: number;
  recipes: number;
}

/**
 * `values[r]` holds one recipe's per-frame values. The frames of one recipe are correlated (one
 * kitchen, one chain of generated images), so the bootstrap resamples whole recipes: each resample
 * draws as many recipes as there are, with replacement, and takes the mean over all their frames.
 * The interval is the 2.5th to 97.5th percentile of `resamples` such means. Seeded: the same input
 * gives the same interval.
 */
export function summarise(values: readonly (readonly number[])[], resamples = 2000, seed = 1): Summary | null {
  const recipes = values.filter((v) => v.length > 0);
  const all = recipes.flat();
  if (all.length === 0) return null;
  const mean = average(all);
  const std = Math.sqrt(all.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, all.length - 1));
  const sums = recipes.map((v) => v.reduce((a, b) => a + b, 0));
  const counts = recipes.map((v) => v.length);
  const random = mulberry32(seed);
  const means = new Float64Array(resamples);
  for (let i = 0; i < resamples; i++) {
    let sum = 0;
    let count = 0;
    for (let k = 0; k < recipes.length; k++) {
      const r = Math.floor(random() * recipes.length);
      sum += sums[r];
      count += counts[r];
    }
    means[i] = sum / count;
  }
  means.sort();
  return { mean, std, ci95: [quantile(means, 0.025), quantile(means, 0.975)], frames: all.length, recipes: recipes.length };
}

function average(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Linear interpolation between order statistics (numpy's default). */
function quantile(sorted: Float64Array, q: number): number {
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

/** A small seeded PRNG in [0, 1); the bootstrap needs reproducibility, not cryptographic quality. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
