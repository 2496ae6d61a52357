import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { FIXTURE_BUNDLES, REPO_ROOT } from './paths.js';

/** A scratch copy of the fixture set a test may edit (bundles reference ../shared and the repo's tokenizer by relative path). */
export function scratchCopy(t: { after: (fn: () => void) => void }): string {
  const root = mkdtempSync(join(tmpdir(), 'stepframe-bundles-'));
  const dir = join(root, 'test', 'fixtures', 'bundles');
  cpSync(FIXTURE_BUNDLES, dir, { recursive: true });
  cpSync(join(REPO_ROOT, 'models', 'shared', 'tokenizer'), join(root, 'models', 'shared', 'tokenizer'), { recursive: true });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  return dir;
}
