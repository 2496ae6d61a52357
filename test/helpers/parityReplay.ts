import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import type { Feed } from '../../src/pipeline/batching/feeds.js';
import type { ComponentName } from '../../src/pipeline/bundle/manifest.js';
import type { SessionPool } from '../../src/pipeline/bundle/sessionPool.js';

interface EncodedTensor {
  dtype: 'float32' | 'int64';
  dims: number[];
  data: string;
}

/** training/'s parity.json: inputs and the outputs PyTorch computed for them (stepframe_train/parity.py). */
interface ParityFile {
  component: ComponentName;
  tolerance: number;
  /** The bound is `tolerance` × the output's largest magnitude (the SD exports), not absolute. */
  tolerance_relative_to_max?: boolean;
  cases: { name: string; inputs: Record<string, EncodedTensor>; outputs: Record<string, EncodedTensor> }[];
}

function decode(t: EncodedTensor): Feed {
  const bytes = Buffer.from(t.data, 'base64');
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return t.dtype === 'int64' ? { type: 'int64', data: new BigInt64Array(buffer), dims: t.dims } : { type: 'float32', data: new Float32Array(buffer), dims: t.dims };
}

export function parityFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('parity.json'))
    .map((f) => join(dir, f))
    .sort();
}

/** Runs each case of a parity file through onnxruntime-node and asserts every output within the file's bound. */
export async function replayParity(pool: SessionPool, file: string): Promise<void> {
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
      let maxMagnitude = 0;
      for (let i = 0; i < a.length; i++) {
        maxError = Math.max(maxError, Math.abs(a[i] - b[i]));
        maxMagnitude = Math.max(maxMagnitude, Math.abs(b[i]));
      }
      const bound = parity.tolerance * (parity.tolerance_relative_to_max ? maxMagnitude : 1);
      assert.ok(maxError <= bound, `${c.name} ${name}: max abs error ${maxError.toExponential(2)} > ${bound.toExponential(2)}`);
    }
  }
}
