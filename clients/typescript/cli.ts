#!/usr/bin/env node
/**
 * stepframe generate "chop the onions" "fry the onions" ... [--steps-file FILE] [--out DIR]
 *
 * Streams a sequence from a stepframe server, shows a progress bar, writes one image per step and
 * contact-sheet.png (all steps side by side, each with its text underneath).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { ConditioningFrame, ImageFormat, SamplingPreset } from './generated/stepframe/v1/sequence_service.js';
import { contactSheet } from './contactSheet.js';
import { StepframeClient } from './stepframeClient.js';

const USAGE = `Usage:
  stepframe generate STEP [STEP ...] [options]
  stepframe generate --steps-file FILE [options]
  stepframe models [--address HOST:PORT]

Options:
  --address HOST:PORT        server (default localhost:50051, or STEPFRAME_ADDRESS)
  --steps-file FILE          one step per line (blank lines ignored)
  --out DIR                  output folder (default ./stepframe-out)
  --model NAME               model bundle (default: the server's)
  --seed N                   seed (default: random, printed)
  --inference-steps N        denoising steps per image (default: the model's)
  --guidance-scale X         text guidance scale
  --image-guidance-scale X   separate image guidance scale (three-row guidance)
  --scheduler NAME           ddpm, ddim, pndm, lms, euler, euler_ancestral, dpmpp_2m, lcm
  --init-image FILE          image that conditions the first step
  --frame-strength S         warm start in (0, 1]: later images start from the previous one noised to S
                             and run only that share of the steps (default 1: each from noise)
  --condition-on FRAME       previous (the paper's, default), first (every image conditioned on the first frame)
                             or first_and_previous (on the mean of the two)
  --first-frame-weight W     the first frame's share, in [0, 1], of what each image is conditioned on (wins over --condition-on)
  --preset NAME              fast (DPM++ 2M, 10 steps), consistent (DDPM 50, first-frame weight 0.75)
                             or consistent_fast (DPM++ 2M, 6 steps, --condition-on first)
  --timeout-s N              deadline in seconds
`;

function fail(message: string): never {
  process.stderr.write(`stepframe: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function progressBar(done: number, total: number, label: string): void {
  if (!process.stderr.isTTY) return;
  const width = 30;
  const filled = Math.round((done / total) * width);
  process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round((100 * done) / total)}% ${label}`.padEnd(80));
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (!command || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      address: { type: 'string', default: process.env.STEPFRAME_ADDRESS ?? 'localhost:50051' },
      'steps-file': { type: 'string' },
      out: { type: 'string', default: 'stepframe-out' },
      model: { type: 'string', default: '' },
      seed: { type: 'string' },
      'inference-steps': { type: 'string' },
      'guidance-scale': { type: 'string' },
      'image-guidance-scale': { type: 'string' },
      scheduler: { type: 'string', default: '' },
      'init-image': { type: 'string' },
      'frame-strength': { type: 'string' },
      'condition-on': { type: 'string' },
      preset: { type: 'string' },
      'first-frame-weight': { type: 'string' },
      'timeout-s': { type: 'string' },
    },
  });
  const client = new StepframeClient(values.address!);
  try {
    if (command === 'models') {
      const { models, defaultModel } = await client.listModels({ timeoutMs: 10_000 });
      for (const m of models) {
        process.stdout.write(`${m.name === defaultModel ? '*' : ' '} ${m.name.padEnd(18)} ${m.fuserKind.padEnd(16)} ${m.width}x${m.height}  ${m.defaults?.scheduler} ${m.defaults?.numInferenceSteps} steps, guidance ${m.defaults?.guidanceScale}${m.supportsImageGuidance ? `, image guidance ${m.defaults?.imageGuidanceScale}` : ''}\n`);
      }
      return;
    }
    if (command !== 'generate') fail(`unknown command ${command}`);
    const steps = values['steps-file']
      ? (await readFile(values['steps-file'], 'utf8')).split('\n').map((l) => l.trim()).filter(Boolean)
      : positionals;
    if (steps.length === 0) fail('give the steps as arguments or with --steps-file');
    const num = (name: string, v: string | undefined) => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isFinite(n)) fail(`--${name} must be a number, got ${v}`);
      return n;
    };
    const inferenceSteps = num('inference-steps', values['inference-steps']) ?? 0;
    const conditionOn = { undefined: ConditioningFrame.CONDITIONING_FRAME_UNSPECIFIED, previous: ConditioningFrame.CONDITIONING_FRAME_PREVIOUS, first: ConditioningFrame.CONDITIONING_FRAME_FIRST, first_and_previous: ConditioningFrame.CONDITIONING_FRAME_FIRST_AND_PREVIOUS }[String(values['condition-on'])];
    if (conditionOn === undefined) fail(`--condition-on must be previous, first or first_and_previous, got ${values['condition-on']}`);
    const preset = { undefined: SamplingPreset.SAMPLING_PRESET_UNSPECIFIED, fast: SamplingPreset.SAMPLING_PRESET_FAST, consistent: SamplingPreset.SAMPLING_PRESET_CONSISTENT, consistent_fast: SamplingPreset.SAMPLING_PRESET_CONSISTENT_FAST }[String(values.preset)];
    if (preset === undefined) fail(`--preset must be fast, consistent or consistent_fast, got ${values.preset}`);
    await mkdir(values.out!, { recursive: true });
    const frames: { png: Buffer; caption: string }[] = [];
    let seed: bigint | undefined;
    for await (const event of client.generate(
      {
        steps,
        model: values.model,
        seed: values.seed === undefined ? undefined : BigInt(values.seed),
        numInferenceSteps: inferenceSteps,
        guidanceScale: num('guidance-scale', values['guidance-scale']),
        imageGuidanceScale: num('image-guidance-scale', values['image-guidance-scale']),
        scheduler: values.scheduler,
        initImage: values['init-image'] ? await readFile(values['init-image']) : Buffer.alloc(0),
        frameStrength: num('frame-strength', values['frame-strength']),
        conditionOn,
        firstFrameWeight: num('first-frame-weight', values['first-frame-weight']),
        preset,
        outputFormat: ImageFormat.IMAGE_FORMAT_PNG,
        streamProgress: true,
      },
      { timeoutMs: values['timeout-s'] ? Number(values['timeout-s']) * 1000 : undefined },
    )) {
      if (event.$case === 'progress') {
        const done = event.value.stepIndex * event.value.denoisingSteps + event.value.denoisingStep;
        progressBar(done, steps.length * event.value.denoisingSteps, `step ${event.value.stepIndex + 1}/${steps.length}`);
      } else if (event.$case === 'image') {
        const file = join(values.out!, `step-${String(event.value.stepIndex + 1).padStart(2, '0')}.png`);
        await writeFile(file, event.value.data);
        // The server's consistency score: how close this frame stays to the one before, in its image encoder.
        const similarity = event.value.previousFrameSimilarity;
        if (similarity !== undefined) {
          if (process.stderr.isTTY) process.stderr.write('\n');
          process.stdout.write(`step ${event.value.stepIndex + 1}: similarity to the previous frame ${similarity.toFixed(3)}\n`);
        }
        frames.push({ png: Buffer.from(event.value.data), caption: event.value.stepText });
        seed ??= event.value.seed;
      } else {
        seed = event.value.seed;
        if (process.stderr.isTTY) process.stderr.write('\n');
        const sheet = join(values.out!, 'contact-sheet.png');
        await writeFile(sheet, await contactSheet(frames));
        process.stdout.write(`${event.value.images} images from ${event.value.model} (seed ${seed}, ${event.value.scheduler}, ${event.value.numInferenceSteps} steps) in ${(event.value.totalMs / 1000).toFixed(1)} s\n`);
        process.stdout.write(`wrote ${frames.length} step images and ${sheet}\n`);
      }
    }
  } finally {
    client.close();
  }
}

main().catch((error: { code?: number; details?: string; message: string }) => {
  process.stderr.write(`stepframe: ${error.details ?? error.message}\n`);
  process.exit(1);
});
