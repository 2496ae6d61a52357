/**
 * The engine on an SD 1.5-sized bundle (random weights from `npm run bench:real-size:bundle`), measured on
 * this machine's CPU, in one run:
 *   1. load time and RSS after load, by executor layout (1 executor × all cores, N executors × 1 thread);
 *   2. a 512×512 request with 2 denoising steps: time to first image (guidance on: 2 UNet rows a step);
 *   3. one UNet call at 2 and at 8 rows (bare session, all cores).
 * Writes bench/results/real-size.json.
 *
 *   node --expose-gc dist/bench/realSizeBench.js --models /tmp/sd15-bench/models --bundle sd15-concatenation [--rows 2,8] [--skip-layouts]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import * as ort from 'onnxruntime-node';

import { Engine } from '../src/pipeline/engine.js';
import type { SequenceRequest } from '../src/pipeline/sequenceRequest.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: '/tmp/sd15-bench/models' },
    bundle: { type: 'string', default: 'sd15-concatenation' },
    calls: { type: 'string', default: '3' },
    rows: { type: 'string', default: '2,8' },
    'skip-layouts': { type: 'boolean', default: false },
  },
});
const cores = availableParallelism();
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);

function rss(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss;
}

function request(): SequenceRequest {
  return {
    model: args.bundle!, steps: ['chop the carrots'], seed: 1n, numInferenceSteps: 2, guidanceScale: 7.5, imageGuidanceScale: null,
    scheduler: 'ddpm', eta: 0, negativePrompt: '', format: 'png', quality: 90, initImage: null,
  };
}

async function layout(executors: number, intraOp: number): Promise<Record<string, number | string>> {
  const before = rss();
  const t0 = performance.now();
  const engine = await Engine.create({
    modelsDir: args.models!, defaultModel: args.bundle,
    session: { executionProviders: ['cpu'], interOpNumThreads: 1, cudaDeviceIds: [], log: () => undefined, mode: 'workers', executors, intraOpNumThreads: intraOp },
    batch: { maxBatch: 16, maxQueueDelayMs: 2 }, admission: { maxActiveSequences: 8, maxQueuedSequences: 64 },
  });
  const loadS = (performance.now() - t0) / 1000;
  const loaded = rss();
  const t1 = performance.now();
  let firstImageS = 0;
  for await (const _ of engine.generate(request())) {
    if (!firstImageS) firstImageS = (performance.now() - t1) / 1000;
  }
  const result = { layout: `${executors} executor(s) × ${intraOp} thread(s)`, loadS, rssAfterLoadMiB: mib(loaded), rssAddedMiB: mib(loaded - before), timeToFirstImageS: firstImageS };
  await engine.dispose();
  console.log(JSON.stringify(result));
  return result;
}

async function unetCall(rows: number, calls: number): Promise<Record<string, number>> {
  const file = join(args.models!, args.bundle!, 'unet', 'model.onnx');
  const session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: cores, interOpNumThreads: 1 });
  const feeds = {
    sample: new ort.Tensor('float32', new Float32Array(rows * 4 * 64 * 64).fill(0.1), [rows, 4, 64, 64]),
    timestep: new ort.Tensor('int64', new BigInt64Array(rows).fill(500n), [rows]),
    encoder_hidden_states: new ort.Tensor('float32', new Float32Array(rows * 77 * 768).fill(0.01), [rows, 77, 768]),
  };
  await session.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    times.push((performance.now() - t0) / 1000);
  }
  await session.release();
  const median = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
  const result = { rows, medianS: median, rowsPerSecond: rows / median };
  console.log(JSON.stringify(result));
  return result;
}

const results: Record<string, unknown> = {
  date: new Date().toISOString(), cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version,
  bundle: args.bundle,
};
const out = join('bench', 'results', 'real-size.json');
const save = () => {
  mkdirSync(join('bench', 'results'), { recursive: true });
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
};
if (!args['skip-layouts']) results.layouts = [await layout(1, cores), await layout(cores, 1)];
save();
// Each call size is saved as it ends: at 512×512 an 8-row call may not fit in memory at all.
results.unetCalls = [];
for (const rows of args.rows!.split(',').map(Number)) {
  (results.unetCalls as unknown[]).push(await unetCall(rows, Number(args.calls)));
  save();
}
