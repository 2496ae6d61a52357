import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { OPTIONS } from '../src/server/config.js';
import { REPO_ROOT } from './helpers/paths.js';

const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const ci = readFileSync(join(REPO_ROOT, '.ci', 'run'), 'utf8');

test('the README and docs/configuration.md list every flag with its variable', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');
  for (const option of OPTIONS) {
    const row = `| \`--${option.flag}\` | \`${option.env}\` |`;
    assert.ok(readme.includes(row), `README: ${option.flag}`);
    assert.ok(doc.includes(row), `docs/configuration.md: ${option.flag}`);
  }
});

test('the README quickstart commands are the ones CI and package.json use', () => {
  assert.match(readme, /^bash \.ci\/run /m);
  assert.match(readme, /^npm ci && npm start /m);
  assert.match(ci, /^npm ci$/m);
  assert.match(ci, /^npm test$/m);
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.ok(pkg.scripts.start.includes('dist/src/server/main.js'));
});
