/**
 * The engine on an SD 1.5-sized bundle (random weights from the real-SD export), measured on this
 * machine's CPU, in one run:
 *   1. load time and memory after load, by executor layout (1 executor × all cores, N executors ×
 *      1 thread) and by --shared-weights (off: every session repacks its own copy of the weights;
 *      on: sessions read them in place from the memory-mapped external data, one copy per process);
 *   2. a 512×512 request with 2 denoising steps: time to first image (guidance on: 2 UNet rows a step);
 *   3. hashing every weight file, as --verify-weights does at load;
 *   4. time to first image under --max-loaded-bundles 1 with two bundles: the bundle already loaded,
 *      and the other one (unload, load, then generate);
 *   5. optionally one UNet call at --rows (bare session, all cores).
 * Writes bench/results/real-size.json.
 *
 *   node --expose-gc dist/bench/realSizeBench.js --models /tmp/sd15-bench/models --bundle sd15-concatenation [--rows 2,8] [--skip-layouts]
 */
import { linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import * as ort from 'onnxruntime-node';

import { Engine } from '../src/pipeline/engine.js';
import type { SequenceRequest } from '../src/pipeline/sequenceRequest.js';
import { verifyComponentHash } from '../src/pipeline/bundle/verifyWeights.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: '/tmp/sd15-bench/models' },
    bundle: { type: 'string', default: 'sd15-concatenation' },
    calls: { type: 'string', default: '3' },
    rows: { type: 'string', default: '' },
    'shared-weights': { type: 'string', default: 'off,on' },
    'skip-layouts': { type: 'boolean', default: false },
    'skip-switch': { type: 'boolean', default: false },
    /** Internal: measure one layout ("EXECUTORS,THREADS,PREPACKING") in this process and print it. */
    'one-layout': { type: 'string' },
  },
});
const cores = availableParallelism();
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);

function rss(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss;
}

/** Resident memory split into private (anonymous) and file-backed pages (the memory-mapped weights). */
function residentSplit(): { anonMiB: number; fileMiB: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kib = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { anonMiB: Math.round(kib('RssAnon') / 1024), fileMiB: Math.round(kib('RssFile') / 1024) };
}

function request(): SequenceRequest {
  return {
    model: args.bundle!, steps: ['chop the carrots'], seed: 1n, numInferenceSteps: 2, guidanceScale: 7.5, imageGuidanceScale: null,
    scheduler: 'ddpm', eta: 0, negativePrompt: '', format: 'png', quality: 90, initImage: null, frameStrength: 1, firstFrameWeight: 0,
  };
}

function createEngine(modelsDir: string, executors: number, intraOp: number, sharedWeights: 'on' | 'off' | 'auto', maxLoaded: number | null = null, defaultModel = args.bundle): Promise<Engine> {
  return Engine.create({
    modelsDir, defaultModel,
    session: { executionProviders: ['cpu'], interOpNumThreads: 1, cudaDeviceIds: [], log: () => undefined, mode: 'workers', executors, intraOpNumThreads: intraOp, sharedWeights },
    batch: { maxBatch: 16, maxQueueDelayMs: 2 }, admission: { maxActiveSequences: 8, maxQueuedSequences: 64 },
    residency: { budgetBytes: null, maxLoaded },
  });
}

async function firstImageSeconds(engine: Engine, model: string): Promise<number> {
  const t0 = performance.now();
  let first = 0;
  for await (const _ of engine.generate({ ...request(), model })) if (!first) first = (performance.now() - t0) / 1000;
  return first;
}

async function layout(executors: number, intraOp: number, sharedWeights: 'on' | 'off'): Promise<Record<string, number | string>> {
  const before = rss();
  const t0 = performance.now();
  const engine = await createEngine(args.models!, executors, intraOp, sharedWeights);
  const loadS = (performance.now() - t0) / 1000;
  const loaded = rss();
  const split = residentSplit();
  const firstImageS = await firstImageSeconds(engine, args.bundle!);
  const afterImage = rss();
  const result = {
    layout: `${executors} executor(s) × ${intraOp} thread(s)`, sharedWeights, loadS, rssAfterLoadMiB: mib(loaded), rssAddedMiB: mib(loaded - before), ...split,
    timeToFirstImageS: firstImageS, rssAfterFirstImageMiB: mib(afterImage),
  };
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
/**
 * Each layout in a fresh process: memory a disposed engine freed stays in the allocator, so a
 * second layout in the same process would reuse it and its RSS would say nothing.
 */
function layoutInChild(executors: number, intraOp: number, sharedWeights: string): Record<string, unknown> {
  const argv = [...process.execArgv, fileURLToPath(import.meta.url), '--models', args.models!, '--bundle', args.bundle!, '--one-layout', `${executors},${intraOp},${sharedWeights}`];
  const out = execFileSync(process.execPath, argv, { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

if (args['one-layout']) {
  const [executors, intraOp, sharedWeights] = args['one-layout'].split(',');
  await layout(Number(executors), Number(intraOp), sharedWeights as 'on' | 'off');
  process.exit(0);
}
if (!args['skip-layouts']) {
  results.layouts = [];
  for (const sharedWeights of args['shared-weights']!.split(',')) {
    for (const [executors, intraOp] of [[1, cores], [cores, 1]]) {
      (results.layouts as unknown[]).push(layoutInChild(executors, intraOp, sharedWeights));
      save();
    }
  }
}

/** Every weight file of the bundle hashed as --verify-weights does (the expected digest is wrong on purpose: the time is what counts). */
async function hashing(): Promise<Record<string, number>> {
  const dir = join(args.models!, args.bundle!);
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => join(dir, f)).filter((f) => /\.onnx(_data)?$/.test(f));
  const bytes = files.reduce((sum, f) => sum + statSync(f).size, 0);
  const t0 = performance.now();
  for (const file of files) await verifyComponentHash(file, '0'.repeat(64), 'bench').catch(() => undefined);
  const seconds = (performance.now() - t0) / 1000;
  const result = { files: files.length, gib: bytes / 2 ** 30, seconds, gibPerSecond: bytes / 2 ** 30 / seconds };
  console.log(JSON.stringify({ hashing: result }));
  return result;
}
results.hashing = await hashing();
save();

/**
 * Two bundles under --max-loaded-bundles 1: a second folder whose stepframe.json names another bundle
 * and whose other files are hard links to the first's (the same weights, no extra disk).
 */
async function bundleSwitch(): Promise<Record<string, number>> {
  const root = join(args.models!, '..', 'switch-models');
  rmSync(root, { recursive: true, force: true });
  const source = join(args.models!, args.bundle!);
  const manifest = JSON.parse(readFileSync(join(source, 'stepframe.json'), 'utf8')) as { name: string };
  for (const name of ['a', 'b']) {
    const target = join(root, `${args.bundle}-${name}`);
    for (const file of readdirSync(source, { recursive: true, encoding: 'utf8' })) {
      const from = join(source, file);
      if (statSync(from).isDirectory() || file === 'stepframe.json') continue;
      mkdirSync(dirname(join(target, file)), { recursive: true });
      linkSync(from, join(target, file));
    }
    writeFileSync(join(target, 'stepframe.json'), JSON.stringify({ ...manifest, name: `${args.bundle}-${name}` }, null, 2));
  }
  const engine = await createEngine(root, 1, cores, 'auto', 1, `${args.bundle}-b`);
  const other = `${args.bundle}-a`; // loaded first at start, so unloaded for the default (b)
  const warmS = await firstImageSeconds(engine, `${args.bundle}-b`);
  const coldS = await firstImageSeconds(engine, other);
  await engine.dispose();
  rmSync(root, { recursive: true, force: true });
  const result = { warmTimeToFirstImageS: warmS, coldTimeToFirstImageS: coldS };
  console.log(JSON.stringify({ switch: result }));
  return result;
}
if (!args['skip-switch']) {
  results.bundleSwitch = await bundleSwitch();
  save();
}

// Each call size is saved as it ends: at 512×512 an 8-row call may not fit in memory at all.
results.unetCalls = [];
for (const rows of args.rows!.split(',').filter(Boolean).map(Number)) {
  (results.unetCalls as unknown[]).push(await unetCall(rows, Number(args.calls)));
  save();
}
