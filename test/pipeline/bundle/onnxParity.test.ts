import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, describe, test } from 'node:test';

import type { Feed } from '../../../src/pipeline/batching/feeds.js';
import type { ComponentName } from '../../../src/pipeline/bundle/manifest.js';
import { SessionPool } from '../../../src/pipeline/bundle/sessionPool.js';
import { TEST_SESSION_SETTINGS } from '../../helpers/engineSettings.js';
import { FIXTURE_BUNDLES } from '../../helpers/paths.js';

interface EncodedTensor {
  dtype: 'float32' | 'int64';
  dims: number[];
  data: string;
}

interface ParityFile {
  component: ComponentName;
  tolerance: number;
  cases: { name: string; inputs: Record<string, EncodedTensor>; outputs: Record<string, EncodedTensor> }[];
}

function decode(t: EncodedTensor): Feed {
  const bytes = Buffer.from(t.data, 'base64');
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return t.dtype === 'int64' ? { type: 'int64', data: new BigInt64Array(buffer), dims: t.dims } : { type: 'float32', data: new Float32Array(buffer), dims: t.dims };
}

function parityFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('parity.json'))
    .map((f) => join(dir, f))
    .sort();
}

describe('ONNX exports reproduce PyTorch (parity fixtures written by training/)', () => {
  const pool = new SessionPool(TEST_SESSION_SETTINGS);
  after(() => pool.dispose());
  const files = parityFiles(FIXTURE_BUNDLES);

  test('every exported component has a parity fixture', () => {
    // 4 shared components, 6 UNets and 5 fusers (the baseline has none).
    assert.equal(files.length, 15, files.map((f) => relative(FIXTURE_BUNDLES, f)).join(', '));
  });

  for (const file of files) {
    test(relative(FIXTURE_BUNDLES, file), async () => {
      const parity = JSON.parse(readFileSync(file, 'utf8')) as ParityFile;
      const model = await pool.load(join(file, '..', 'model.onnx'), parity.component);
      for (const c of parity.cases) {
        // An exporter drops inputs a model ignores; feed only what the graph takes, as the engine does.
        const feeds = Object.fromEntries(Object.entries(c.inputs).filter(([name]) => model.hasInput(name)).map(([name, t]) => [name, decode(t)]));
        const results = await model.run(feeds);
        for (const [name, expected] of Object.entries(c.outputs)) {
          const want = decode(expected);
          const got = results[name];
          assert.deepEqual(got.dims, want.dims, `${c.name} ${name} dims`);
          const a = got.data as Float32Array;
          const b = want.data as Float32Array;
          let maxError = 0;
          for (let i = 0; i < a.length; i++) maxError = Math.max(maxError, Math.abs(a[i] - b[i]));
          assert.ok(maxError <= parity.tolerance, `${c.name} ${name}: max abs error ${maxError.toExponential(2)} > ${parity.tolerance}`);
        }
      }
    });
  }
});
