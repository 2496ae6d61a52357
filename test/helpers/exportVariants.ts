import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { REPO_ROOT } from './paths.js';

export interface VariantFolders {
  /** Each variant alone in a models folder of its own: `models(name)` is what --model-dir takes. */
  models: (name: string) => string;
  /** The variant's bundle folder itself. */
  bundle: (name: string) => string;
  cleanup: () => void;
}

/**
 * The export variants, built by training/'s own generator (stepframe_train.onnx_tools.export_variants)
 * from the fixture bundles. Returns a skip reason instead where Debian's python3-onnx is missing
 * (a user's clone without the Python side); CI installs it.
 */
export function buildExportVariants(): VariantFolders | { skip: string } {
  const root = mkdtempSync(join(tmpdir(), 'stepframe-variants-'));
  const built = join(root, 'built');
  let names: string[];
  try {
    const out = execFileSync('/usr/bin/python3', ['-m', 'stepframe_train.onnx_tools.export_variants', '--out', built], { cwd: join(REPO_ROOT, 'training'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    names = (JSON.parse(out.trim().split('\n').pop()!) as { variants: string[] }).variants;
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    return { skip: `the export variants need /usr/bin/python3 with Debian's python3-onnx (bash .ci/run installs it): ${String((error as Error).message).split('\n')[0]}` };
  }
  for (const name of names) {
    mkdirSync(join(root, 'models', name), { recursive: true });
    renameSync(join(built, name), join(root, 'models', name, name));
  }
  return {
    models: (name) => join(root, 'models', name),
    bundle: (name) => join(root, 'models', name, name),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}
