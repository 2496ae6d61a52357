/** `stepframe eval` end to end on a 2-recipe subset of the world's test split, through a real engine. */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

import sharp from 'sharp';

import { REPO_ROOT } from '../helpers/paths.js';

const run = promisify(execFile);
const MAIN = join(REPO_ROOT, 'dist', 'src', 'eval', 'main.js');
const SPLIT = join(REPO_ROOT, 'training', 'world_test');
const ready = existsSync(join(REPO_ROOT, 'models', 'concatenation', 'stepframe.json')) && existsSync(join(REPO_ROOT, 'models', 'evaluation', 'image_encoder.onnx'));
const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

interface Summary {
  mean: number;
  ci95: [number, number];
  frames: number;
  recipes: number;
}

describe('stepframe eval', { skip: ready ? false : 'skipped: no trained bundles or evaluation encoder in models/' }, () => {
  test('scores a 2-recipe subset through the engine, reproducibly, with intervals over recipes', async (t) => {
    const out = mkdtempSync(join(tmpdir(), 'stepframe-eval-'));
    t.after(() => rmSync(out, { recursive: true, force: true }));
    const args = ['--recipes', '2', '--bundles', 'concatenation', '--settings', 'ddim:3', '--resamples', '200', '--contact-sheet', '2', '--concurrency', '2', ...(hasTorch ? [] : ['--no-world-scores'])];
    const first = await run(process.execPath, [MAIN, '--out', join(out, 'a'), ...args], { cwd: REPO_ROOT });
    assert.match(first.stderr, /2 recipes from .*world_test \(the recipe world, seed 0\)/);
    assert.match(first.stderr, /concatenation @ ddim:3: 2\/2 recipes/, 'progress is shown');
    const results = JSON.parse(readFileSync(join(out, 'a', 'results.json'), 'utf8'));

    const split = JSON.parse(readFileSync(join(SPLIT, 'recipes.json'), 'utf8')).recipes.slice(0, 2);
    const generatedFrames = split.reduce((n: number, r: { steps: unknown[] }) => n + r.steps.length - 1, 0);
    assert.deepEqual(results.rows.map((r: { row: string }) => r.row), ['concatenation @ ddim:3', 'copy the previous frame', 'autoencoder reconstruction']);
    for (const row of results.rows) {
      for (const [name, s] of Object.entries(row.metrics) as [string, Summary][]) {
        assert.ok(s.ci95[0] <= s.mean && s.mean <= s.ci95[1], `${row.row} ${name}: ${s.mean} outside ${s.ci95}`);
        assert.equal(s.recipes, 2, `${row.row} ${name}`);
      }
      assert.equal(row.metrics.psnr.frames, generatedFrames);
      assert.equal(row.metrics.clipI.frames, generatedFrames - 2, 'CLIP-I pairs each generated frame with the one before it');
      if (hasTorch) assert.ok(row.metrics.styleError && row.metrics.textProbe, `${row.row}: the world's scores`);
    }
    const [generated, copy, recon] = results.rows;
    // The floor and ceiling bracket what a model does where they should.
    assert.ok(recon.metrics.psnr.mean > generated.metrics.psnr.mean && recon.metrics.clipScore.mean < generated.metrics.clipScore.mean);
    assert.ok(copy.metrics.ssim.mean > generated.metrics.ssim.mean, 'copying the previous frame keeps the structure');
    assert.equal(generated.sampling.scheduler, 'ddim');
    assert.equal(generated.sampling.numInferenceSteps, 3);
    assert.equal(generated.sampling.imageGuidanceScale, 1.5, "the bundle's own image guidance where the setting names none");
    assert.ok(generated.imagesPerSecond > 0);
    assert.equal(readdirSync(join(out, 'a', 'frames', 'concatenation_ddim_3')).length, generatedFrames);
    const sheet = await sharp(join(out, 'a', 'contact-sheet-ddim_3.png')).metadata();
    assert.ok(sheet.width! > 400 && sheet.height! > 200);
    assert.match(readFileSync(join(out, 'a', 'results.md'), 'utf8'), /\| concatenation @ ddim:3 \| [0-9.]+ \[[0-9.]+, [0-9.]+\] \|/);

    // Fixed seeds: a second run scores every frame the same.
    await run(process.execPath, [MAIN, '--out', join(out, 'b'), ...args], { cwd: REPO_ROOT });
    const again = JSON.parse(readFileSync(join(out, 'b', 'results.json'), 'utf8'));
    assert.deepEqual(again.frames, results.frames);
  });

  test('bad input gets a clear error naming the problem', async () => {
    const fails = async (args: string[], pattern: RegExp) => {
      const error = await run(process.execPath, [MAIN, ...args], { cwd: REPO_ROOT }).then(() => null, (e: { stderr: string; code: number }) => e);
      assert.ok(error, `${args.join(' ')} should fail`);
      assert.equal(error.code, 1);
      assert.match(error.stderr, pattern);
    };
    await fails(['--recipes', '1'], /--out DIR is required/);
    await fails(['--out', '/tmp/x', '--settings', 'warp:10'], /unknown scheduler warp/);
    await fails(['--out', '/tmp/x', '--settings', 'ddim:0'], /steps must be an integer/);
    await fails(['--out', '/tmp/x', '--settings', 'ddim:10:4:-1'], /ddim:10:4:-1: image guidance must be a number in \[0, 30\]/);
    await fails(['--out', '/tmp/x', '--test-split', '/nonexistent'], /\/nonexistent\/recipes\.json/);
  });
});
