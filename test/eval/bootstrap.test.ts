import assert from 'node:assert/strict';
import { test } from 'node:test';

import { mulberry32, summarise } from '../../src/eval/bootstrap.js';

/** A synthetic evaluation: recipes with their own offset (frames of one recipe are correlated) around `mean`. */
function dataset(random: () => number, mean: number, recipes: number): number[][] {
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  return Array.from({ length: recipes }, () => {
    const offset = 2 * gauss();
    return Array.from({ length: 2 + Math.floor(random() * 6) }, () => mean + offset + gauss());
  });
}

test('the 95% interval over recipes covers the true mean about 95% of the time', () => {
  const random = mulberry32(11);
  let covered = 0;
  const trials = 300;
  for (let i = 0; i < trials; i++) {
    const summary = summarise(dataset(random, 10, 40), 400, i + 1)!;
    if (summary.ci95[0] <= 10 && 10 <= summary.ci95[1]) covered++;
  }
  // Binomial(300, 0.95) lies in [0.91, 0.98] with probability above 99.9%.
  assert.ok(covered / trials > 0.9 && covered / trials < 0.985, `covered ${covered} of ${trials}`);
});

test('resampling frames instead of recipes would be too narrow: the interval reflects the recipe offsets', () => {
  const data = dataset(mulberry32(2), 0, 40);
  const summary = summarise(data)!;
  const frames = data.flat();
  const naiveHalfWidth = 1.96 * (summary.std / Math.sqrt(frames.length));
  assert.ok(summary.ci95[1] - summary.ci95[0] > 1.5 * 2 * naiveHalfWidth, `recipe interval ${summary.ci95}, frame-level half width ${naiveHalfWidth}`);
});

test('the same values and seed give the same interval; mean, spread and counts are plain', () => {
  const data = [[1, 2, 3], [4, 5], [], [6]];
  const a = summarise(data, 500, 7)!;
  assert.deepEqual(summarise(data, 500, 7), a);
  assert.equal(a.mean, 3.5);
  assert.equal(a.frames, 6);
  assert.equal(a.recipes, 3, 'a recipe without values does not count');
  assert.ok(Math.abs(a.std - Math.sqrt(17.5 / 5)) < 1e-12);
  assert.ok(a.ci95[0] >= 1 && a.ci95[1] <= 6 && a.ci95[0] < a.mean && a.mean < a.ci95[1]);
  assert.equal(summarise([[], []]), null);
});
