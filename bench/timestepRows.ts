/**
 * What a scalar-timestep UNet (Optimum >= 1.24) costs step-level batching, and what the converter
 * gives back: rows per UNet call with 4 concurrent 200-step sequences, on the scalar export and on
 * the same UNet after `stepframe_train.onnx_tools.timestep_per_row`, side by side in one run.
 *
 *   npm run build && node dist/bench/timestepRows.js
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

import type { BatchReport } from '../src/pipeline/batching/batchedModel.js';
import { Engine } from '../src/pipeline/engine.js';
import type { SequenceRequest } from '../src/pipeline/sequenceRequest.js';
import { buildExportVariants } from '../test/helpers/exportVariants.js';

async function rowsPerCall(modelsDir: string): Promise<{ rowsPerCall: number; calls: number; seconds: number }> {
  const reports: BatchReport[] = [];
  const engine = await Engine.create({
    modelsDir,
    session: { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, mode: 'workers', executors: 1, cudaDeviceIds: [], log: () => undefined },
    batch: { maxBatch: 16, maxQueueDelayMs: 2 },
    admission: { maxActiveSequences: 8, maxQueuedSequences: 8 },
    observer: (r) => reports.push(r),
  });
  const request = (seed: bigint): SequenceRequest => ({
    model: '', steps: ['stir the pot'], seed, numInferenceSteps: 200, guidanceScale: 7.5, imageGuidanceScale: null,
    scheduler: 'ddim', eta: 0, negativePrompt: '', format: 'png', quality: 90, initImage: null, frameStrength: 1, firstFrameWeight: 0,
  });
  const t0 = performance.now();
  // Staggered starts, as real requests arrive: the sequences are at different timesteps.
  await Promise.all([0, 1, 2, 3].map(async (i) => {
    await new Promise((r) => setTimeout(r, i * 37));
    for await (const _ of engine.generate(request(BigInt(i)))) void _;
  }));
  const seconds = (performance.now() - t0) / 1000;
  await engine.dispose();
  const unet = reports.filter((r) => r.model.endsWith('unet/model.onnx'));
  return { rowsPerCall: unet.reduce((s, r) => s + r.rows, 0) / unet.length, calls: unet.length, seconds };
}

const variants = buildExportVariants();
if ('skip' in variants) throw new Error(variants.skip);
try {
  const name = 'optimum_scalar_timestep';
  const scalar = await rowsPerCall(variants.models(name));
  const unet = join(variants.bundle(name), 'unet', 'model.onnx');
  execFileSync('/usr/bin/python3', ['-m', 'stepframe_train.onnx_tools.timestep_per_row', unet, unet], { cwd: join(process.cwd(), 'training'), stdio: 'ignore' });
  const perRow = await rowsPerCall(variants.models(name));
  console.log(JSON.stringify({ scalar, perRow, gain: perRow.rowsPerCall / scalar.rowsPerCall }));
} finally {
  variants.cleanup();
}
