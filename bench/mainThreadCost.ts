/**
 * The main thread's own work per UNet row at 512×512 (latents 4×64×64, conditioning 77×768): the
 * scheduler step, stacking a batch's inputs and splitting its output, classifier-free guidance, and
 * per image the VAE output's conversion to pixels and the PNG encoding. From these, how many UNet
 * rows per second one main thread can feed: the figure that decides whether one process can drive
 * several GPUs. No model runs here; the inputs are random.
 *
 *   node dist/bench/mainThreadCost.js [--rows 16] [--repeats 200]
 */
import { parseArgs } from 'node:util';

import { concatFeeds, splitOutputs } from '../src/pipeline/batching/feeds.js';
import { combineGuidance } from '../src/pipeline/guidance.js';
import { encodeImage, vaeOutputToRgb } from '../src/pipeline/rgbImage.js';
import { createScheduler } from '../src/pipeline/schedulers/index.js';
import { SeededRandom } from '../src/pipeline/random.js';

const { values: args } = parseArgs({ options: { rows: { type: 'string', default: '16' }, repeats: { type: 'string', default: '200' } } });
const rows = Number(args.rows);
const repeats = Number(args.repeats);
const LATENT = 4 * 64 * 64;
const CONDITIONING = 77 * 768;
const SD1 = { _class_name: 'DDPMScheduler', num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', steps_offset: 1, set_alpha_to_one: false, clip_sample: false, prediction_type: 'epsilon', timestep_spacing: 'leading' };

const random = new SeededRandom(1n);
const noise = (n: number) => random.normals(n);

/** Median microseconds of `fn` over the repeats (after a warm-up). */
function micros(fn: () => void, times = repeats): number {
  for (let i = 0; i < 5; i++) fn();
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    fn();
    samples.push((performance.now() - t0) * 1000);
  }
  return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)];
}

const results: Record<string, number> = {};
for (const name of ['ddpm', 'ddim', 'euler', 'dpmpp_2m'] as const) {
  const scheduler = createScheduler(name, SD1);
  const sample = noise(LATENT);
  const output = noise(LATENT);
  // One run of 50 steps walked in order (a run refuses steps out of order), a new one when it ends.
  let run = scheduler.setTimesteps(50, new SeededRandom(2n));
  let next = 0;
  results[`scheduler step (${name}), per row`] = micros(() => {
    if (next === run.timesteps.length) (run = scheduler.setTimesteps(50, new SeededRandom(2n))), (next = 0);
    run.step(output, run.timesteps[next++], sample);
  });
}
// A batch of `rows` rows, 2 per sequence (two-row guidance): stack sample, timestep and conditioning, then split the output.
const parts = Array.from({ length: rows / 2 }, () => ({
  sample: { type: 'float32' as const, data: noise(2 * LATENT), dims: [2, 4, 64, 64] },
  timestep: { type: 'int64' as const, data: new BigInt64Array([500n, 500n]), dims: [2] },
  encoder_hidden_states: { type: 'float32' as const, data: noise(2 * CONDITIONING), dims: [2, 77, 768] },
}));
results['stack a batch\'s inputs, per row'] = micros(() => void concatFeeds(parts, new Set())) / rows;
const batchOutput = { out_sample: { type: 'float32' as const, data: noise(rows * LATENT), dims: [rows, 4, 64, 64] } };
results['split its output, per row'] = micros(() => void splitOutputs(batchOutput, ['out_sample'], parts.map(() => 2))) / rows;
const twoRows = noise(2 * LATENT);
results['guidance (two rows into one), per row'] = micros(() => void combineGuidance(twoRows, 'text', 7.5, 1)) / 2;
const decoded = { data: noise(3 * 512 * 512), dims: [1, 3, 512, 512] };
results['VAE output to RGB pixels, per image'] = micros(() => void vaeOutputToRgb(decoded), 20);
const rgb = vaeOutputToRgb(decoded);
const encodeSamples: number[] = [];
for (let i = 0; i < 10; i++) {
  const t0 = performance.now();
  await encodeImage(rgb, 'png', 90);
  encodeSamples.push((performance.now() - t0) * 1000);
}
results['PNG encoding, per image (libvips thread, awaited)'] = encodeSamples.sort((a, b) => a - b)[5];

const perRow = results['scheduler step (ddpm), per row'] + results['stack a batch\'s inputs, per row'] + results['split its output, per row'] + results['guidance (two rows into one), per row'];
for (const [what, us] of Object.entries(results)) console.log(`${what.padEnd(52)} ${us.toFixed(1).padStart(9)} µs`);
console.log(`main thread per UNet row (DDPM step + stack + split + guidance): ${perRow.toFixed(1)} µs -> ${Math.round(1e6 / perRow)} rows/s from one main thread`);
console.log(`per image at 50 steps and 2 rows: ${((100 * perRow + results['VAE output to RGB pixels, per image']) / 1000).toFixed(1)} ms of main-thread work (PNG encoding runs on libvips' threads)`);
