import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

import sharp from 'sharp';

import { REPO_ROOT } from '../helpers/paths.js';
import { startTestServer } from '../helpers/testServer.js';

const CLI = join(REPO_ROOT, 'dist', 'clients', 'typescript', 'cli.js');
const run = promisify(execFile);

describe('stepframe CLI', () => {
  test('generate writes one PNG per step and a contact sheet with every step side by side', async (t) => {
    const { address } = await startTestServer(t);
    const out = mkdtempSync(join(tmpdir(), 'stepframe-cli-'));
    t.after(() => rmSync(out, { recursive: true, force: true }));
    const { stdout } = await run(process.execPath, [CLI, 'generate', 'chop the onions', 'fry the onions', 'add the tomatoes', '--address', address, '--out', out, '--seed', '9', '--inference-steps', '2']);
    assert.match(stdout, /3 images from attend_to_image \(seed 9, ddpm, 2 steps\)/);
    // The consistency score of every image after the first.
    assert.match(stdout, /step 2: similarity to the previous frame -?[01]\.\d{3}\nstep 3: similarity to the previous frame -?[01]\.\d{3}\n/);
    assert.doesNotMatch(stdout, /step 1: similarity/);
    assert.deepEqual(readdirSync(out).sort(), ['contact-sheet.png', 'step-01.png', 'step-02.png', 'step-03.png']);
    const sheet = await sharp(join(out, 'contact-sheet.png')).metadata();
    assert.ok(sheet.width! > 3 * 192, `sheet is ${sheet.width} wide`);
  });

  test('--steps-file reads one step per line', async (t) => {
    const { address } = await startTestServer(t);
    const out = mkdtempSync(join(tmpdir(), 'stepframe-cli-'));
    t.after(() => rmSync(out, { recursive: true, force: true }));
    writeFileSync(join(out, 'recipe.txt'), 'boil the rice\n\nadd the peas\n');
    await run(process.execPath, [CLI, 'generate', '--steps-file', join(out, 'recipe.txt'), '--address', address, '--out', join(out, 'images'), '--inference-steps', '2']);
    assert.deepEqual(readdirSync(join(out, 'images')).sort(), ['contact-sheet.png', 'step-01.png', 'step-02.png']);
  });

  test('--preset, --condition-on, --first-frame-weight and --frame-strength reach the server; a bad value is refused by name', async (t) => {
    const { address } = await startTestServer(t);
    const out = mkdtempSync(join(tmpdir(), 'stepframe-cli-'));
    t.after(() => rmSync(out, { recursive: true, force: true }));
    const { stdout } = await run(process.execPath, [CLI, 'generate', 'boil the rice', 'add the peas', '--address', address, '--out', out, '--seed', '3', '--preset', 'consistent_fast', '--frame-strength', '0.5']);
    assert.match(stdout, /2 images from attend_to_image \(seed 3, dpmpp_2m, 6 steps\)/);
    await run(process.execPath, [CLI, 'generate', 'boil the rice', '--address', address, '--out', out, '--condition-on', 'first']);
    await assert.rejects(run(process.execPath, [CLI, 'generate', 'stir', '--address', address, '--first-frame-weight', '2']), /first_frame_weight: must be in \[0, 1\], got 2/);
    await assert.rejects(run(process.execPath, [CLI, 'generate', 'stir', '--address', address, '--condition-on', 'last']), /--condition-on must be previous, first or first_and_previous, got last/);
    await assert.rejects(run(process.execPath, [CLI, 'generate', 'stir', '--address', address, '--frame-strength', '0']), /frame_strength: must be in \(0, 1\]/);
  });

  test('a server error is reported with its message and a non-zero exit', async (t) => {
    const { address } = await startTestServer(t);
    await assert.rejects(run(process.execPath, [CLI, 'generate', 'stir', '--address', address, '--model', 'nope']), (error: { code: number; stderr: string }) => {
      assert.equal(error.code, 1);
      assert.match(error.stderr, /model: unknown model "nope"/);
      return true;
    });
  });
});
