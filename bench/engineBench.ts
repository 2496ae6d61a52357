/**
 * The engine's performance story, measured side by side in one run (not a timed test):
 *   1. engine overhead: a lone 4-step sequence through the engine vs bare session.run calls doing the same work;
 *   2. batching gain: 8 sequences at once vs the same 8 one after another;
 *   3. executors: the same concurrent load through worker executors and through the single-loop
 *      (main-thread) engine: images/s, time to first image, event-loop delay;
 *   4. the roofline: the best UNet rows/s bare sessions reach here, and the engine's served share of it;
 *   5. the PyTorch peer: training/'s reference sampler on the same weights vs the engine;
 *   6. memory: RSS after 200 sequences vs after 20.
 * Writes bench/results/engine.json and the table in docs/performance.md.
 *
 *   npm run bench          (exports seeded default-size bundles first)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import type { BatchReport } from '../src/pipeline/batching/batchedModel.js';
import { Engine } from '../src/pipeline/engine.js';
import type { ExecutionSettings } from '../src/pipeline/execution/executionSettings.js';
import type { SequenceRequest } from '../src/pipeline/sequenceRequest.js';
import { bareSequence } from './bareSequence.js';
import { type LoadResult, percentile, runConcurrentLoad } from './concurrentLoad.js';
import { updatePerformanceDoc } from './performanceDoc.js';
import { measureRoofline } from './roofline.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'bench/results/tmp/bundles' },
    bundle: { type: 'string', default: 'attend_to_image' },
    executors: { type: 'string', default: String(availableParallelism()) },
    'max-batch': { type: 'string', default: '16' },
    repeats: { type: 'string', default: '5' },
    'load-rounds': { type: 'string', default: '3' },
    'memory-sequences': { type: 'string', default: '200' },
    'skip-python': { type: 'boolean', default: false },
  },
});
const REPO = process.cwd();
const executors = Number(args.executors);
const cores = availableParallelism();
const repeats = Number(args.repeats);
const maxBatch = Number(args['max-batch']);
const STEPS = ['chop the carrots', 'add the carrots to the pan', 'stir everything together', 'bake until golden'];

function request(overrides: Partial<SequenceRequest> = {}): SequenceRequest {
  return {
    model: args.bundle!, steps: STEPS, seed: 1n, numInferenceSteps: 50, guidanceScale: 7.5, imageGuidanceScale: null,
    scheduler: 'ddpm', eta: 0, negativePrompt: '', format: 'png', quality: 90, initImage: null, frameStrength: 1, firstFrameWeight: 0, ...overrides,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeEngineSequence(engine: Engine, overrides: Partial<SequenceRequest> = {}): Promise<number> {
  const t0 = performance.now();
  for await (const _ of engine.generate(request(overrides))) void _;
  return performance.now() - t0;
}

function createEngine(session: ExecutionSettings, reports: BatchReport[]): Promise<Engine> {
  return Engine.create({
    modelsDir: args.models!,
    defaultModel: args.bundle,
    session,
    batch: { maxBatch, maxQueueDelayMs: 2 },
    admission: { maxActiveSequences: 8, maxQueuedSequences: 64 },
    observer: (r) => reports.push(r),
  });
}

async function main(): Promise<void> {
  const quiet = { executionProviders: ['cpu'], interOpNumThreads: 1, cudaDeviceIds: [], log: () => undefined };
  // The engine as it ships (one one-thread executor per core) and the single-loop engine it replaced
  // (sessions on the main thread with one intra-op thread per core).
  const workerReports: BatchReport[] = [];
  const mainReports: BatchReport[] = [];
  const engine = await createEngine({ ...quiet, mode: 'workers', executors, intraOpNumThreads: 1 }, workerReports);
  const singleLoop = await createEngine({ ...quiet, mode: 'main-thread', executors: 1, intraOpNumThreads: cores }, mainReports);
  const results: Record<string, any> = {
    date: new Date().toISOString(), cpus: cpus().length, cpuModel: cpus()[0]?.model, executorCount: executors, maxBatch, bundle: args.bundle, node: process.version,
  };

  // 1. Engine overhead, interleaved so both see the same machine load. A lone sequence's calls run
  // one after another, so both sides use one-thread sessions.
  const bare = await bareSequence(join(args.models!, args.bundle!), STEPS, 1);
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
  results.batching = {
    sequential: { imagesPerSecond: 16 / (sequentialMs / 1000), p50Ms: percentile(sequentialLatency, 50), p95Ms: percentile(sequentialLatency, 95) },
    concurrent: { imagesPerSecond: 16 / (concurrentMs / 1000), p50Ms: percentile(concurrentLatency, 50), p95Ms: percentile(concurrentLatency, 95) },
    throughputRatio: sequentialMs / concurrentMs,
    goal: '>= 1.5',
  };
  console.log('batching', JSON.stringify(results.batching));

  // 3. Executors against the single-loop engine: 8 closed-loop clients, each running two-step
  // sequences back to back; the two engines alternate so drift on the machine hits both.
  const twoSteps = (seed: bigint) => request({ seed, steps: STEPS.slice(0, 2) });
  const rounds = Number(args['load-rounds']);
  const workerRuns: LoadResult[] = [];
  const mainRuns: LoadResult[] = [];
  await runConcurrentLoad(engine, workerReports, twoSteps, 8, 1);
  await runConcurrentLoad(singleLoop, mainReports, twoSteps, 8, 1);
  for (let i = 0; i < rounds; i++) {
    workerRuns.push(await runConcurrentLoad(engine, workerReports, twoSteps, 8, 3, executors));
    mainRuns.push(await runConcurrentLoad(singleLoop, mainReports, twoSteps, 8, 3));
  }
  const middle = (runs: LoadResult[]) => [...runs].sort((a, b) => a.imagesPerSecond - b.imagesPerSecond)[Math.floor(runs.length / 2)];
  const workers = middle(workerRuns);
  const mainThread = middle(mainRuns);
  results.executors = {
    workers, mainThread,
    allRuns: { workersImagesPerSecond: workerRuns.map((r) => r.imagesPerSecond), mainThreadImagesPerSecond: mainRuns.map((r) => r.imagesPerSecond) },
    speedup: workers.imagesPerSecond / mainThread.imagesPerSecond,
    goal: '>= 1.8 images/s, event-loop p99 <= 5 ms',
  };
  console.log('executors', JSON.stringify(results.executors));

  // 4. The roofline at the batch sizes the engine ran under that load.
  const unetFile = join(args.models!, args.bundle!, 'unet', 'model.onnx');
  const batches = [...new Set([8, maxBatch])];
  const roofline = await measureRoofline(unetFile, cores, batches, unetShapes(join(args.models!, args.bundle!)));
  results.roofline = {
    ...roofline,
    servedRowsPerSecond: workers.unetRowsPerSecond,
    fraction: workers.unetRowsPerSecond / roofline.best.rowsPerSecond,
    nonUnetShare: workers.nonUnetShare,
    // The main thread's own CPU (scheduler math, copies, codecs' hand-off) comes out of the same cores.
    ceiling: (1 - workers.nonUnetShare) * (1 - workers.mainThreadBusy / cores),
    goal: '>= 0.8',
  };
  console.log('roofline', JSON.stringify(results.roofline));
  await singleLoop.dispose();

  // 5. The PyTorch peer on the same seeded weights, one thread as the engine's sessions.
  if (!args['skip-python']) {
    const out = execFileSync('/usr/bin/python3', ['-m', 'stepframe_train.reference_sampler', '--random', '--preset', 'default', '--bundle', args.bundle!,
      '--repeats', String(Math.max(2, Math.min(repeats, 3))), '--threads', '1', '--steps', ...STEPS], { cwd: join(REPO, 'training'), encoding: 'utf8' });
    const python = JSON.parse(out.trim().split('\n').pop()!) as { median_s: number };
    results.pytorchPeer = { pytorchMedianMs: python.median_s * 1000, engineMedianMs: median(engineMs), speedup: (python.median_s * 1000) / median(engineMs), goal: '>= 3' };
    console.log('pytorch', results.pytorchPeer);
  }

  // 6. Memory: short sequences, RSS after 20 and after 200 (worker threads included).
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
  updatePerformanceDoc(join(REPO, 'docs', 'performance.md'), results);
}

/** The UNet's per-row input shapes, as the bundle's manifest declares them. */
function unetShapes(bundleDir: string): { sample: number[]; conditioning: number[] } {
  const manifest = JSON.parse(readFileSync(join(bundleDir, 'stepframe.json'), 'utf8')) as { components: { unet: { inputs: { name: string; shape: unknown[] }[] } } };
  const rowShape = (name: string) => manifest.components.unet.inputs.find((i) => i.name === name)!.shape.slice(1).map(Number);
  return { sample: rowShape('sample'), conditioning: rowShape('encoder_hidden_states') };
}

await main();
