import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';

import { REPO_ROOT } from './helpers/paths.js';

/** Package names imported by the TypeScript files under `dir` (type-only imports excluded: they vanish at build). */
function importedPackages(dir: string): Set<string> {
  const found = new Set<string>();
  for (const file of readdirSync(join(REPO_ROOT, dir), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(REPO_ROOT, dir, file), 'utf8');
    for (const match of text.matchAll(/^import (?!type )[^'"]*?from ['"]([^'".][^'"]*)['"]/gm)) {
      const specifier = match[1];
      if (specifier.startsWith('node:') || builtinModules.includes(specifier)) continue;
      found.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]);
    }
  }
  return found;
}

test('every package the server and the CLI import at run time is a production dependency (the image installs with --omit=dev)', () => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const dir of ['src', 'clients/typescript']) {
    for (const name of importedPackages(dir)) assert.ok(name in pkg.dependencies, `${dir} imports ${name}, which package.json lists only as a dev dependency or not at all`);
  }
});
