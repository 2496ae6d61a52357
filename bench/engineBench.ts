/**
 * The engine's performance story, measured side by side in one run (not a timed test):
 *   1. engine overhead: a 4-step sequence through the engine vs bare session.run calls doing the same work;
 *   2. batching gain: 8 sequences at once vs the same 8 one after another;
 *   3. the PyTorch peer: training/'s reference sampler on the same weights vs the engine;
 *   4. memory: RSS after 200 sequences vs after 20.
 * Writes bench/results/engine.json and the table in docs/performance.md.
 *
 *   npm run bench          (exports seeded default-size bundles first)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import * as ort from 'onnxruntime-node';

import { BundleLoader } from '../src/pipeline/bundle/loadBundle.js';
import type { ExecutionSettings } from '../src/pipeline/execution/executionSettings.js';
import { SessionPool } from '../src/pipeline/bundle/sessionPool.js';
import { clipPixelValues } from '../src/pipeline/clipImagePreprocess.js';
import { Engine } from '../src/pipeline/engine.js';
import { combineGuidance } from '../src/pipeline/guidance.js';
import { SeededRandom } from '../src/pipeline/random.js';
import { type RgbImage, encodeImage, vaeOutputToRgb } from '../src/pipeline/rgbImage.js';
import { createScheduler } from '../src/pipeline/schedulers/index.js';
import type { SequenceRequest } from '../src/pipeline/sequenceRequest.js';
import { imageSeed } from '../src/pipeline/sequenceRequest.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'bench/results/tmp/bundles' },
    bundle: { type: 'string', default: 'attend_to_image' },
    threads: { type: 'string', default: '2' },
    'max-batch': { type: 'string', default: '16' },
    repeats: { type: 'string', default: '5' },
    'memory-sequences': { type: 'string', default: '200' },
    'skip-python': { type: 'boolean', default: false },
  },
});
const REPO = process.cwd();
const threads = Number(args.threads);
const repeats = Number(args.repeats);
const session: ExecutionSettings = { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, mode: 'main-thread', executors: 1, cudaDeviceIds: [], log: () => undefined };
const STEPS = ['chop the carrots', 'add the carrots to the pan', 'stir everything together', 'bake until golden'];

function request(overrides: Partial<SequenceRequest> = {}): SequenceRequest {
  return {
    model: args.bundle!, steps: STEPS, seed: 1n, numInferenceSteps: 50, guidanceScale: 7.5, imageGuidanceScale: null,
    scheduler: 'ddpm', eta: 0, negativePrompt: '', format: 'png', quality: 90, initImage: null, ...overrides,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];

async function timeEngineSequence(engine: Engine, overrides: Partial<SequenceRequest> = {}): Promise<number> {
  const t0 = performance.now();
  for await (const _ of engine.generate(request(overrides))) void _;
  return performance.now() - t0;
}

/** The same work as the engine's loop, written directly against the sessions: no queues, no batching loop. */
async function bareSequence(dir: string): Promise<() => Promise<number>> {
  const bundle = await new BundleLoader(new SessionPool(session)).load(dir);
  const sessions = {
    text: await ort.InferenceSession.create(join(dir, bundle.manifest.components.text_encoder!.path), opts()),
    image: await ort.InferenceSession.create(join(dir, bundle.manifest.components.image_encoder!.path), opts()),
    fuser: await ort.InferenceSession.create(join(dir, bundle.manifest.components.fuser!.path), opts()),
    unet: await ort.InferenceSession.create(join(dir, bundle.manifest.components.unet!.path), opts()),
    vae: await ort.InferenceSession.create(join(dir, bundle.manifest.components.vae_decoder!.path), opts()),
  };
  const m = bundle.manifest;
  const latentDims = [1, m.latentChannels, m.height / m.latentDownscale, m.width / m.latentDownscale];
  const latentSize = latentDims.reduce((a, b) => a * b, 1);
  const scheduler = createScheduler('ddpm', bundle.schedulerConfig);
  const ids = (text: string) => new ort.Tensor('int64', BigInt64Array.from(bundle.tokenizer.encodePadded(text), BigInt), [1, 77]);
  return async () => {
    const t0 = performance.now();
    const uncond = await sessions.text.run({ input_ids: ids('') });
    const zeroProbe = await sessions.image.run({ pixel_values: new ort.Tensor('float32', new Float32Array(3 * m.height * m.width), [1, 3, m.height, m.width]) });
    const zeroHidden = new Float32Array((zeroProbe.last_hidden_state.data as Float32Array).length);
    let previous: RgbImage | null = null;
    for (let s = 0; s < STEPS.length; s++) {
      const text = await sessions.text.run({ input_ids: ids(STEPS[s]) });
      const imageHidden = previous
        ? ((await sessions.image.run({ pixel_values: new ort.Tensor('float32', (await clipPixelValues(previous, bundle.imagePreprocess!)).data, [1, 3, m.height, m.width]) })).last_hidden_state.data as Float32Array)
        : zeroHidden;
      const th = concat(text.last_hidden_state.data as Float32Array, uncond.last_hidden_state.data as Float32Array);
      const ih = concat(imageHidden, zeroHidden);
      const fused = await sessions.fuser.run({
        text_hidden_states: new ort.Tensor('float32', th, [2, 77, th.length / 154]),
        image_hidden_states: new ort.Tensor('float32', ih, [2, ih.length / 2 / (zeroProbe.last_hidden_state.dims[2] as number), zeroProbe.last_hidden_state.dims[2] as number]),
      });
      const random = new SeededRandom(imageSeed(1n, s));
      const run = scheduler.setTimesteps(50, random);
      let latents = random.normals(latentSize);
      for (const t of run.timesteps) {
        const out = await sessions.unet.run({
          sample: new ort.Tensor('float32', concat(latents, latents), [2, ...latentDims.slice(1)]),
          timestep: new ort.Tensor('int64', BigInt64Array.of(BigInt(t), BigInt(t)), [2]),
          encoder_hidden_states: fused.encoder_hidden_states,
        });
        latents = run.step(combineGuidance(out.out_sample.data as Float32Array, 'text', 7.5, 1), t, latents).prevSample;
      }
      const decoded = await sessions.vae.run({ latent_sample: new ort.Tensor('float32', latents.map((v) => v / m.scalingFactor), latentDims) });
      previous = vaeOutputToRgb({ data: decoded.sample.data as Float32Array, dims: decoded.sample.dims });
      await encodeImage(previous, 'png', 90);
    }
    return performance.now() - t0;
  };
}

function opts(): ort.InferenceSession.SessionOptions {
  return { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1 };
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function main(): Promise<void> {
  const modelsDir = args.models!;
  const engine = await Engine.create({
    modelsDir,
    defaultModel: args.bundle,
    session,
    batch: { maxBatch: Number(args['max-batch']), maxQueueDelayMs: 2 },
    admission: { maxActiveSequences: 8, maxQueuedSequences: 64 },
  });
  const results: Record<string, unknown> = {
    date: new Date().toISOString(), cpus: cpus().length, cpuModel: cpus()[0]?.model, threads, maxBatch: Number(args['max-batch']),
    bundle: args.bundle, node: process.version,
  };

  // 1. Engine overhead, interleaved so both see the same machine load.
  const bare = await bareSequence(join(modelsDir, args.bundle!));
  await timeEngineSequence(engine);
  await bare();
  const engineMs: number[] = [];
  const bareMs: number[] = [];
  for (let i = 0; i < repeats; i++) {
    engineMs.push(await timeEngineSequence(engine));
    bareMs.push(await bare());
  }
  results.overhead = { engineMedianMs: median(engineMs), bareMedianMs: median(bareMs), ratio: median(engineMs) / median(bareMs), goal: '<= 1.05' };
  console.log('overhead', results.overhead);

  // 2. Batching gain: 8 two-step sequences at once vs one after another.
  const eight = Array.from({ length: 8 }, (_, i) => ({ seed: BigInt(100 + i), steps: STEPS.slice(0, 2) }));
  const sequentialLatency: number[] = [];
  const t0 = performance.now();
  for (const o of eight) sequentialLatency.push(await timeEngineSequence(engine, o));
  const sequentialMs = performance.now() - t0;
  const t1 = performance.now();
  const concurrentLatency = await Promise.all(eight.map((o) => timeEngineSequence(engine, o)));
  const concurrentMs = performance.now() - t1;
  const images = 8 * 2;
  results.batching = {
    sequential: { imagesPerSecond: images / (sequentialMs / 1000), p50Ms: percentile(sequentialLatency, 50), p95Ms: percentile(sequentialLatency, 95) },
    concurrent: { imagesPerSecond: images / (concurrentMs / 1000), p50Ms: percentile(concurrentLatency, 50), p95Ms: percentile(concurrentLatency, 95) },
    throughputRatio: sequentialMs / concurrentMs,
    goal: '>= 1.5',
  };
  console.log('batching', JSON.stringify(results.batching));

  // 3. The PyTorch peer on the same seeded weights.
  if (!args['skip-python']) {
    const out = execFileSync('/usr/bin/python3', ['-m', 'stepframe_train.reference_sampler', '--random', '--preset', 'default', '--bundle', args.bundle!,
      '--repeats', String(Math.max(2, Math.min(repeats, 3))), '--threads', String(threads), '--steps', ...STEPS], { cwd: join(REPO, 'training'), encoding: 'utf8' });
    const python = JSON.parse(out.trim().split('\n').pop()!) as { median_s: number };
    results.pytorchPeer = { pytorchMedianMs: python.median_s * 1000, engineMedianMs: median(engineMs), speedup: (python.median_s * 1000) / median(engineMs), goal: '>= 3' };
    console.log('pytorch', results.pytorchPeer);
  }

  // 4. Memory: short sequences, RSS after 20 and after 200.
  const total = Number(args['memory-sequences']);
  const rss = (): number => {
    (globalThis as { gc?: () => void }).gc?.();
    return process.memoryUsage().rss;
  };
  let after20 = 0;
  for (let i = 0; i < total; i++) {
    await timeEngineSequence(engine, { seed: BigInt(i), steps: ['stir'], numInferenceSteps: 5 });
    if (i === 19) after20 = rss();
  }
  const afterAll = rss();
  results.memory = { sequences: total, rssAfter20Mb: after20 / 2 ** 20, rssAfterAllMb: afterAll / 2 ** 20, growth: afterAll / after20 - 1, goal: '<= 0.05' };
  console.log('memory', results.memory);
  await engine.dispose();

  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
  writeFileSync(join(REPO, 'bench', 'results', 'engine.json'), JSON.stringify(results, null, 2) + '\n');
  updatePerformanceDoc(results);
}

function updatePerformanceDoc(r: Record<string, any>): void {
  const file = join(REPO, 'docs', 'performance.md');
  const fmt = (x: number, d = 2) => x.toFixed(d);
  const rows = [
    `Measured ${r.date.slice(0, 10)} on ${r.cpus} cores (${r.cpuModel}), ${r.threads} intra-op thread(s) per session, maxBatch ${r.maxBatch}, bundle \`${r.bundle}\` (seeded default-size weights), 50 DDPM steps, guidance 7.5.`,
    '',
    '| measure | result | goal |',
    '| --- | --- | --- |',
    `| engine overhead (4-step sequence, engine / bare session.run) | ${fmt(r.overhead.engineMedianMs, 0)} ms / ${fmt(r.overhead.bareMedianMs, 0)} ms = **${fmt(r.overhead.ratio, 3)}×** | ≤ 1.05× |`,
    `| batching gain (8 two-step sequences, concurrent vs sequential throughput) | ${fmt(r.batching.concurrent.imagesPerSecond)} vs ${fmt(r.batching.sequential.imagesPerSecond)} images/s = **${fmt(r.batching.throughputRatio)}×** | ≥ 1.5× |`,
    `| latency p50 / p95, sequential | ${fmt(r.batching.sequential.p50Ms, 0)} / ${fmt(r.batching.sequential.p95Ms, 0)} ms | |`,
    `| latency p50 / p95, concurrent | ${fmt(r.batching.concurrent.p50Ms, 0)} / ${fmt(r.batching.concurrent.p95Ms, 0)} ms | |`,
    r.pytorchPeer
      ? `| PyTorch reference sampler / engine, per 4-step sequence | ${fmt(r.pytorchPeer.pytorchMedianMs, 0)} ms / ${fmt(r.pytorchPeer.engineMedianMs, 0)} ms = **${fmt(r.pytorchPeer.speedup)}×** | ≥ 3× |`
      : '| PyTorch peer | not run (--skip-python) | ≥ 3× |',
    `| RSS growth, ${r.memory.sequences} sequences vs 20 | ${fmt(r.memory.rssAfter20Mb, 1)} → ${fmt(r.memory.rssAfterAllMb, 1)} MiB = **${fmt(r.memory.growth * 100, 1)}%** | ≤ 5% |`,
  ].join('\n');
  let doc: string;
  try {
    doc = readFileSync(file, 'utf8');
  } catch {
    doc = '# Performance\n\n<!-- bench:engine:start -->\n<!-- bench:engine:end -->\n';
  }
  doc = doc.replace(/<!-- bench:engine:start -->[\s\S]*<!-- bench:engine:end -->/, `<!-- bench:engine:start -->\n${rows}\n<!-- bench:engine:end -->`);
  writeFileSync(file, doc);
}

await main();
