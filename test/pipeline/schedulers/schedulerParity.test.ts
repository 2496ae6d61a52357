import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { InternalInvariantError } from '../../../src/pipeline/errors.js';
import { createScheduler } from '../../../src/pipeline/schedulers/index.js';
import { REPO_ROOT } from '../../helpers/paths.js';

interface Case {
  scheduler: string;
  /** scheduler_config.json keys this case sets over the shared config (PNDM's skip_prk_steps). */
  config?: Record<string, unknown>;
  eta: number;
  spacing: string;
  num_inference_steps: number;
  timesteps: number[];
  init_noise_sigma: number;
  initial_sample: number[];
  steps: { prev_sample: number[]; noise: number[] | null }[];
}

const fixture = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'schedulers.json'), 'utf8')) as {
  config: Record<string, unknown>;
  cases: Case[];
};

/** The dummy model training/stepframe_train/scheduler_reference/tables.py defines and drives the loop with. */
const dummyModel = (sample: Float32Array, t: number) => sample.map((x) => Math.tanh(x) * 0.9 + 0.1 * Math.cos(t / 100));

function relativeError(actual: Float32Array, expected: number[]): number {
  let diff = 0;
  let scale = 0;
  expected.forEach((e, i) => {
    diff = Math.max(diff, Math.abs(actual[i] - e));
    scale = Math.max(scale, Math.abs(e));
  });
  return diff / Math.max(scale, 1e-6);
}

describe('schedulers match diffusers over a full loop (relative error <= 1e-4)', () => {
  for (const c of fixture.cases) {
    const variant = [c.eta ? ` eta=${c.eta}` : '', ...Object.entries(c.config ?? {}).map(([k, v]) => ` ${k}=${v}`)].join('');
    test(`${c.scheduler}${variant}, ${c.spacing} spacing, ${c.num_inference_steps} steps`, () => {
      const config = { ...fixture.config, ...c.config, timestep_spacing: c.spacing };
      const run = createScheduler(c.scheduler, config, { eta: c.eta }).setTimesteps(c.num_inference_steps);
      assert.equal(run.timesteps.length, c.timesteps.length);
      // diffusers keeps Euler's linspace timesteps in float32; integer ones must match exactly.
      run.timesteps.forEach((t, i) => assert.ok(Math.abs(t - c.timesteps[i]) <= 1e-4 * Math.max(1, t), `timestep ${i}: ${t} vs ${c.timesteps[i]}`));
      assert.ok(Math.abs(run.initNoiseSigma - c.init_noise_sigma) / c.init_noise_sigma < 1e-5, `initNoiseSigma ${run.initNoiseSigma}`);
      let sample: Float32Array = Float32Array.from(c.initial_sample, (x) => x * run.initNoiseSigma);
      run.timesteps.forEach((t, i) => {
        const output = dummyModel(run.scaleModelInput(sample, t), t);
        const noise = c.steps[i].noise ? Float32Array.from(c.steps[i].noise!) : undefined;
        sample = run.step(output, t, sample, noise).prevSample;
        const error = relativeError(sample, c.steps[i].prev_sample);
        assert.ok(error <= 1e-4, `step ${i} (t=${t}): relative error ${error.toExponential(2)}`);
      });
    });
  }

  test('an unknown scheduler name fails with the allowed names', () => {
    assert.throws(() => createScheduler('unipc', fixture.config), /scheduler: unknown scheduler "unipc"; expected one of ddpm, ddim, pndm/);
  });

  test('steps out of order fail as an internal invariant (INTERNAL, not the client\'s INVALID_ARGUMENT) instead of corrupting the run', () => {
    const run = createScheduler('ddim', fixture.config).setTimesteps(10);
    const sample = new Float32Array(4);
    assert.throws(() => run.step(sample, run.timesteps[1], sample), (error: unknown) => error instanceof InternalInvariantError && /stepped out of order: expected timestep/.test(error.message));
  });

  test('two runs of one scheduler keep separate state', () => {
    const scheduler = createScheduler('dpmpp_2m', fixture.config);
    const a = scheduler.setTimesteps(8);
    const b = scheduler.setTimesteps(8);
    const x = Float32Array.from([0.5, -0.25, 1, 2]);
    const first = a.step(dummyModel(x, a.timesteps[0]), a.timesteps[0], x).prevSample;
    a.step(dummyModel(first, a.timesteps[1]), a.timesteps[1], first);
    // b has not stepped yet: its first step must equal a's first step exactly.
    assert.deepEqual(b.step(dummyModel(x, b.timesteps[0]), b.timesteps[0], x).prevSample, first);
  });
});
