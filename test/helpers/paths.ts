import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, whether tests run from test/ or from the compiled dist/test/. */
export const REPO_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
})();

export const FIXTURE_BUNDLES = join(REPO_ROOT, 'test', 'fixtures', 'bundles');
/** Random-weight bundles of the fusers beyond the paper (training/stepframe_train/models/sequence_fusers.py). */
export const SEQUENCE_FIXTURE_BUNDLES = join(REPO_ROOT, 'test', 'fixtures', 'sequence-bundles');
export const SHARED_DIR = resolve(REPO_ROOT, '..', 'shared');
