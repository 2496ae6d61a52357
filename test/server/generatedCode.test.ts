import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { REPO_ROOT } from '../helpers/paths.js';

const BUF = join(REPO_ROOT, 'node_modules', '.bin', 'buf');

test('the committed ts-proto code is what `npm run generate` makes from proto/', (t) => {
  const out = mkdtempSync(join(tmpdir(), 'stepframe-gen-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const result = spawnSync(BUF, ['generate', '-o', out], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  // The server's copy and the client package's own (which must not import from the server).
  for (const dir of [join('src', 'generated'), join('clients', 'typescript', 'generated')]) {
    const file = join(dir, 'stepframe', 'v1', 'sequence_service.ts');
    assert.equal(readFileSync(join(out, file), 'utf8'), readFileSync(join(REPO_ROOT, file), 'utf8'), `${dir} is stale: run npm run generate`);
  }
});

test('buf lint passes on proto/', () => {
  const result = spawnSync(BUF, ['lint'], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(result.status, 0, result.stdout + result.stderr);
});
