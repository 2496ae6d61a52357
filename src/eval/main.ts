#!/usr/bin/env node
/**
 * stepframe eval: scores bundles on a test split through the engine, so it measures what the
 * server serves. `npm run eval -- --help` lists the options; docs/results.md is made by it.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { findBundleDirs } from '../pipeline/bundle/loadBundle.js';
import { Engine } from '../pipeline/engine.js';
import { SCHEDULER_NAMES, type SchedulerName } from '../pipeline/schedulers/index.js';
import { AutoencoderRoundTrip } from './autoencoderRoundTrip.js';
import { contactSheet } from './contactSheet.js';
import { readEncoderPairs, encoderGridTable } from './encoderGrid.js';
import { EvaluationEncoder } from './evaluationEncoder.js';
import { METRICS, type MetricName, markdownTable, positionTable, summariseRow } from './report.js';
import { Evaluation, type RowResult, type SamplingSetting, slug } from './runEvaluation.js';
import { loadSplit } from './testSplit.js';
import { addWorldScores } from './worldScores.js';

const REPO = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (dir !== dirname(dir) && !existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
})();

const HELP = `stepframe eval: score bundles on a test split through the engine.

  npm run eval -- --out DIR [options]

  --test-split DIR        recipes.json and reference images (default training/world_test)
  --models-dir DIR        bundles (default models)
  --bundles A,B           bundles to score (default: every bundle in --models-dir)
  --settings S1,S2        sampling settings, each "defaults" (the bundle's own), "paper" (DDPM, 50 steps,
                          text guidance 7.5) or SCHEDULER:STEPS[:GUIDANCE[:IMAGE_GUIDANCE]], each optionally with @S: a warm
                          start at frame_strength S (dpmpp_2m:10@0.6), and +first: every frame conditioned on
                          the first instead of the one before (ddpm:50+first), +first_and_previous: on the
                          mean of both, +first=W: on their mean weighted W for the first (default: defaults)
  --recipes N             the first N recipes of the split (default: all)
  --eval-encoder DIR      the evaluation's image encoder (default models/evaluation)
  --seed N                request seed of every sequence (default 1)
  --resamples N           bootstrap resamples over recipes (default 2000)
  --concurrency N         sequences in flight at once, batched by the engine (default 8)
  --executors N           model executors (default 0: one per core, or per CUDA device)
  --execution-providers L ONNX Runtime providers in order (default cpu; cuda,cpu on a GPU)
  --contact-sheet N       recipes on the contact sheet (default 4; 0: none)
  --no-reference-rows     leave out "copy the previous frame" and "autoencoder reconstruction"
  --no-world-scores       leave out the recipe world's text probe and style error
  --grid                  also lay out each metric as a grid of image x text encoders (Table 2), from each
                          bundle's provenance.encoders (training/experiments/encoder_grid.py writes them)
  --python PATH           Python with torch for the world's scores (default /usr/bin/python3)

Writes DIR/results.json (every summary and per-frame score), DIR/results.md (the tables),
DIR/contact-sheet-<setting>.png and DIR/frames/<row>/ (every generated image).`;

/**
 * A setting, optionally conditioned on the first frame (`+first`, `+first_and_previous` for the
 * mean, `+first=W` for weight W) and warm-started (`@S`): `dpmpp_2m:10+first@0.6`.
 */
function parseSetting(text: string): SamplingSetting {
  const [withAnchor, strength] = text.split('@');
  const [base, anchor] = withAnchor.split('+');
  const setting: SamplingSetting = { ...parseSamplingSetting(base), ...(anchor === undefined ? {} : { name: withAnchor, firstFrameWeight: parseFirstFrameWeight(anchor, text) }) };
  if (strength === undefined) return setting;
  const frameStrength = Number(strength);
  if (!(frameStrength > 0 && frameStrength <= 1)) throw new Error(`--settings ${text}: the frame strength after @ must be a number in (0, 1]`);
  return { ...setting, name: text, frameStrength };
}

function parseFirstFrameWeight(anchor: string, text: string): number {
  if (anchor === 'first') return 1;
  if (anchor === 'first_and_previous') return 0.5;
  const weight = /^first=(.+)$/.exec(anchor) ? Number(anchor.slice('first='.length)) : NaN;
  if (!(weight >= 0 && weight <= 1)) throw new Error(`--settings ${text}: after + give first, first_and_previous or first=W with W in [0, 1]`);
  return weight;
}

function parseSamplingSetting(text: string): SamplingSetting {
  if (text === 'defaults') return { name: 'defaults' };
  if (text === 'paper') return { name: 'paper (DDPM 50, guidance 7.5)', scheduler: 'ddpm', numInferenceSteps: 50, guidanceScale: 7.5 };
  const [scheduler, steps, guidance, imageGuidance] = text.split(':');
  if (!(SCHEDULER_NAMES as readonly string[]).includes(scheduler)) throw new Error(`--settings ${text}: unknown scheduler ${scheduler}; expected defaults, paper or one of ${SCHEDULER_NAMES.join(', ')}`);
  const numInferenceSteps = Number(steps);
  if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1 || numInferenceSteps > 1000) throw new Error(`--settings ${text}: steps must be an integer in [1, 1000]`);
  const guidanceScale = guidance === undefined ? undefined : Number(guidance);
  if (guidanceScale !== undefined && !(guidanceScale >= 0 && guidanceScale <= 30)) throw new Error(`--settings ${text}: guidance must be a number in [0, 30]`);
  const imageGuidanceScale = imageGuidance === undefined ? undefined : Number(imageGuidance);
  if (imageGuidanceScale !== undefined && !(imageGuidanceScale >= 0 && imageGuidanceScale <= 30)) throw new Error(`--settings ${text}: image guidance must be a number in [0, 30]`);
  return { name: text, scheduler: scheduler as SchedulerName, numInferenceSteps, guidanceScale, imageGuidanceScale };
}

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number >= 0, got ${value}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      'test-split': { type: 'string', default: join(REPO, 'training', 'world_test') },
      'models-dir': { type: 'string', default: join(REPO, 'models') },
      bundles: { type: 'string' },
      settings: { type: 'string', default: 'defaults' },
      recipes: { type: 'string' },
      'eval-encoder': { type: 'string', default: join(REPO, 'models', 'evaluation') },
      seed: { type: 'string', default: '1' },
      resamples: { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '8' },
      executors: { type: 'string', default: '0' },
      'execution-providers': { type: 'string', default: 'cpu' },
      'contact-sheet': { type: 'string', default: '4' },
      'no-reference-rows': { type: 'boolean', default: false },
      'no-world-scores': { type: 'boolean', default: false },
      grid: { type: 'boolean', default: false },
      python: { type: 'string', default: '/usr/bin/python3' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void console.log(HELP);
  if (!values.out) throw new Error('--out DIR is required (npm run eval -- --help)');
  const out = resolve(values.out);
  const settings = values.settings.split(',').map((s) => parseSetting(s.trim()));
  const concurrency = Math.max(1, positiveInt('concurrency', values.concurrency));
  const resamples = Math.max(100, positiveInt('resamples', values.resamples));
  const seed = positiveInt('seed', values.seed);
  const split = await loadSplit(resolve(values['test-split']), values.recipes ? positiveInt('recipes', values.recipes) || undefined : undefined);
  const progress = (line: string) => process.stderr.write(`[eval] ${line}\n`);
  progress(`${split.recipes.length} recipes from ${split.dir}${split.worldSeed === null ? '' : ` (the recipe world, seed ${split.worldSeed})`}`);

  const modelsDir = resolve(values['models-dir']);
  const engine = await Engine.create({
    modelsDir,
    session: {
      executionProviders: values['execution-providers'].split(','),
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      mode: 'workers',
      executors: positiveInt('executors', values.executors),
      cudaDeviceIds: [],
      log: () => undefined,
      warn: (message) => progress(`warning: ${message}`),
    },
    batch: { maxBatch: 16, maxQueueDelayMs: 5 },
    admission: { maxActiveSequences: concurrency, maxQueuedSequences: concurrency },
  });
  const encoder = await EvaluationEncoder.load(resolve(values['eval-encoder']));
  try {
    const models = engine.models();
    const wanted = values.bundles ? values.bundles.split(',').map((b) => b.trim()) : models.map((m) => m.name);
    const unknown = wanted.filter((w) => !models.some((m) => m.name === w));
    if (unknown.length > 0) throw new Error(`--bundles: ${unknown.join(', ')} not in ${modelsDir} (${models.map((m) => m.name).join(', ')})`);
    const bundleDirs = await findBundleDirs(modelsDir);
    // Read before the long run, so that a bundle without an encoder pair fails at once.
    const pairs = values.grid ? await readEncoderPairs(bundleDirs, wanted) : null;
    const evaluation = new Evaluation({ engine, split, encoder, outDir: out, seed: BigInt(seed), concurrency, progress });
    const rows: RowResult[] = [];
    for (const setting of settings) for (const name of wanted) rows.push(await evaluation.generatedRow(models.find((m) => m.name === name)!, setting));

    const aeDir = bundleDirs.find((d) => basename(d) === wanted[0]) ?? bundleDirs[0];
    const roundTrip = await AutoencoderRoundTrip.load(aeDir);
    const referenceRows = values['no-reference-rows'] && split.worldSeed === null ? [] : await evaluation.referenceRows(roundTrip);
    await roundTrip.release();
    const scored = [...rows, ...(values['no-reference-rows'] ? [] : referenceRows)];
    if (split.worldSeed !== null && !values['no-world-scores']) {
      progress("the world's text probe and style error");
      const reconstructed = join(out, 'frames', 'autoencoder_reconstruction');
      await addWorldScores(split, scored, reconstructed, values.python, join(REPO, 'training'));
    }
    const summaries = scored.map((r) => summariseRow(r, resamples, seed));
    const bySetting = settings.map((s) => `### ${s.name}\n\n${markdownTable([...summaries.filter((r) => r.setting === s.name), ...summaries.filter((r) => r.setting === null)])}`);
    const metricNames = (Object.keys(METRICS) as MetricName[]).filter((m) => summaries.some((r) => r.metrics[m]));
    const grids = pairs === null ? [] : settings.map((s) =>
      `### Encoder grid, ${s.name}\n\n${metricNames.map((m) => encoderGridTable(summaries.filter((r) => r.setting === s.name), pairs, m)).join('\n\n')}`);
    const markdown = [
      `Recipes: ${split.recipes.length} (${split.dir}); seed ${seed}; 95% intervals from ${resamples} bootstrap resamples over recipes; images/s through the engine, ${concurrency} sequences at once.`,
      '',
      ...bySetting.flatMap((t) => [t, '']),
      ...grids.flatMap((t) => [t, '']),
      '### By step position (the first step is given)',
      '',
      positionTable(summaries.filter((r) => r.setting !== null), 'clipScore'),
      '',
      ...(summaries.some((r) => r.metrics.styleError) ? [positionTable(summaries.filter((r) => r.setting !== null), 'styleError'), ''] : []),
    ].join('\n');
    await mkdir(out, { recursive: true });
    const results = {
      created: new Date().toISOString(),
      testSplit: split.dir,
      recipes: split.recipes.length,
      seed,
      resamples,
      concurrency,
      evaluationEncoder: encoder.description,
      settings,
      rows: summaries,
      frames: Object.fromEntries(scored.map((r) => [r.row, r.frames])),
    };
    await writeFile(join(out, 'results.json'), JSON.stringify(results, null, 1) + '\n');
    await writeFile(join(out, 'results.md'), markdown + '\n');
    const sheetRecipes = positiveInt('contact-sheet', values['contact-sheet']);
    // One sheet per setting, so that each compares the bundles under the same sampling.
    if (sheetRecipes > 0) {
      for (const setting of settings) await writeFile(join(out, `contact-sheet-${slug(setting.name)}.png`), await contactSheet(split, rows.filter((r) => r.setting === setting.name), sheetRecipes));
    }
    progress(`wrote ${join(out, 'results.md')} and results.json`);
    console.log(markdown);
  } finally {
    await encoder.release();
    await engine.dispose();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`stepframe eval: ${(error as Error).message}\n`);
  process.exit(1);
});
