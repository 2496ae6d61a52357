import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { InvalidArgumentError } from '../../src/pipeline/errors.js';
import { SeededRandom } from '../../src/pipeline/random.js';
import { createScheduler } from '../../src/pipeline/schedulers/index.js';
import type { NoiseLevel } from '../../src/pipeline/schedulers/schedulerRun.js';
import { checkFrameStrength, noisedLatents, warmStartSteps } from '../../src/pipeline/warmStart.js';
import { FIXTURE_BUNDLES } from '../helpers/paths.js';

const config = JSON.parse(readFileSync(join(FIXTURE_BUNDLES, 'concatenation', 'scheduler', 'scheduler_config.json'), 'utf8')) as Record<string, unknown>;

/** The ε an ε-prediction model would have to output at this noise level for the sample to come from `x0`. */
function oracleNoise(sample: Float32Array, x0: Float32Array, level: NoiseLevel): Float32Array {
  if ('sigma' in level) return sample.map((x, i) => (x - x0[i]) / level.sigma);
  const a = Math.sqrt(level.alphaProd);
  const b = Math.sqrt(1 - level.alphaProd);
  return sample.map((x, i) => (x - a * x0[i]) / b);
}

describe('warm start (frame_strength)', () => {
  test('runs the last ⌊N × s⌋ steps, as diffusers img2img', () => {
    assert.equal(warmStartSteps(50, 1), 50);
    assert.equal(warmStartSteps(50, 0.6), 30);
    assert.equal(warmStartSteps(10, 0.55), 5);
    assert.equal(warmStartSteps(10, 0.05), 0);
  });

  // With a model that knows the clean latents, every sampler started partway must land on them:
  // this holds only if the latents were noised to exactly the level of the step the run starts at,
  // in the scheduler's own parameterisation (variance-preserving or σ-space), and the run then
  // takes every later step in order.
  for (const [name, steps] of [['ddim', 10], ['ddpm', 10], ['euler', 10], ['euler_ancestral', 10], ['lms', 10], ['dpmpp_2m', 10], ['lcm', 4]] as const) {
    test(`${name}: started at strength 0.5 from noised clean latents, a perfect model recovers them`, () => {
      const random = new SeededRandom(3n);
      const x0 = random.normals(64);
      // DDIM's last step goes to ᾱ_0 (just under 1) unless set_alpha_to_one: set, so its end is x₀ itself.
      const run = createScheduler(name, name === 'ddim' ? { ...config, set_alpha_to_one: true } : config).setTimesteps(steps, random, { eta: 0 });
      checkFrameStrength(run, name, 0.5);
      const first = run.timesteps.length - warmStartSteps(run.timesteps.length, 0.5);
      assert.ok(first > 0 && first < run.timesteps.length);
      run.startAt(first);
      let sample = noisedLatents(run.noiseLevel(first)!, x0, random.normals(64));
      const start = Float32Array.from(sample);
      let calls = 0;
      for (let i = first; i < run.timesteps.length; i++) {
        const t = run.timesteps[i];
        sample = run.step(oracleNoise(sample, x0, run.noiseLevel(i)!), t, sample).prevSample;
        calls++;
      }
      assert.equal(calls, warmStartSteps(run.timesteps.length, 0.5));
      const error = Math.max(...sample.map((v, i) => Math.abs(v - x0[i])));
      const startError = Math.max(...start.map((v, i) => Math.abs(v - x0[i])));
      assert.ok(error < 1e-3 * Math.max(1, startError), `${name}: off by ${error} (the noised start was off by ${startError})`);
    });
  }

  test('refused, naming frame_strength: a strength that leaves no step, and PNDM (its warm-up needs the whole schedule)', () => {
    const run = createScheduler('ddim', config).setTimesteps(10, new SeededRandom(1n));
    assert.throws(() => checkFrameStrength(run, 'ddim', 0.05), (e: unknown) => e instanceof InvalidArgumentError && e.field === 'frame_strength' && /leaves no step/.test(e.message));
    const pndm = createScheduler('pndm', config).setTimesteps(10, new SeededRandom(1n));
    assert.throws(() => checkFrameStrength(pndm, 'pndm', 0.5), (e: unknown) => e instanceof InvalidArgumentError && e.field === 'frame_strength' && /pndm cannot start partway/.test(e.message));
    checkFrameStrength(pndm, 'pndm', 1);
  });
});
