import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { REPO_ROOT } from '../helpers/paths.js';
import { readmeExample } from '../helpers/readmeExamples.js';
import { startTestServer } from '../helpers/testServer.js';

const PACKAGE = join(REPO_ROOT, 'clients', 'typescript');

test('@stepframe/client packs, installs into a fresh project, and drives a live server from there', async (t) => {
  const { address } = await startTestServer(t);
  const work = mkdtempSync(join(tmpdir(), 'stepframe-sdk-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  // Build with the repository's TypeScript, then pack what package.json's "files" ship.
  execFileSync(join(REPO_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(PACKAGE, 'tsconfig.json')], { stdio: 'pipe' });
  execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: PACKAGE, stdio: 'pipe' });
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'))!;
  assert.match(tarball, /^stepframe-client-\d+\.\d+\.\d+\.tgz$/);

  const project = join(work, 'project');
  execFileSync('mkdir', ['-p', project]);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'sdk-check', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', join(work, tarball)], { cwd: project, stdio: 'pipe' });
  writeFileSync(join(project, 'check.mjs'), `
    import { StepframeClient } from '@stepframe/client';
    const client = new StepframeClient(process.argv[2], { retry: { maxAttempts: 3 } });
    const { images, summary } = await client.collect({ steps: ['chop the carrots', 'stir'], numInferenceSteps: 2, seed: 5n }, { timeoutMs: 60000 });
    const models = await client.listModels();
    const controller = new AbortController();
    let cancelled = 'no';
    try {
      for await (const e of client.generate({ steps: ['stir', 'stir', 'stir'], numInferenceSteps: 200, streamProgress: true }, { signal: controller.signal })) controller.abort();
    } catch (error) { cancelled = String(error.code); }
    client.close();
    console.log(JSON.stringify({ images: images.map((i) => i.mimeType), summary: summary.images, models: models.models.length, cancelled }));
  `);
  // Asynchronously: the server runs in this process, so its event loop must keep turning.
  const { stdout } = await promisify(execFile)(process.execPath, ['check.mjs', address], { cwd: project, encoding: 'utf8' });
  const out = JSON.parse(stdout.trim());
  // 1 is grpc's CANCELLED.
  assert.deepEqual(out, { images: ['image/png', 'image/png'], summary: 2, models: 6, cancelled: '1' });

  // The README's example, as a team would paste it into their project.
  writeFileSync(join(project, 'readme.mjs'), readmeExample('### TypeScript', 'ts', address));
  const readme = await promisify(execFile)(process.execPath, ['readme.mjs'], { cwd: project, encoding: 'utf8' });
  assert.match(readme.stdout, /^0 image\/png \d+\n1 image\/png \d+\n2 images in \d+(\.\d+)? ms\n$/);
});
