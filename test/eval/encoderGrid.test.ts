import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { encoderGridTable, readEncoderPairs } from '../../src/eval/encoderGrid.js';
import type { RowSummary } from '../../src/eval/report.js';

function row(bundle: string, clipScore: number): RowSummary {
  const summary = { mean: clipScore, std: 0.1, ci95: [clipScore - 0.01, clipScore + 0.02] as [number, number], frames: 10, recipes: 2 };
  return { row: `${bundle} @ defaults`, bundle, setting: 'defaults', sampling: null, imagesPerSecond: 1, metrics: { clipScore: summary }, byPosition: {} };
}

test('the grid puts image encoders down, text encoders across, and marks a missing pair', () => {
  const pairs = new Map([
    ['a', { image: 'vit', text: 'bag' }],
    ['b', { image: 'vit', text: 'transformer' }],
    ['c', { image: 'conv', text: 'bag' }],
  ]);
  const table = encoderGridTable([row('a', 0.5), row('b', 0.25), row('c', 0.75), row('not_paired', 0.1)], pairs, 'clipScore');
  assert.deepEqual(table.split('\n'), [
    '| CLIP comparison ↓: image ↓ text → | bag | transformer |',
    '| --- | --- | --- |',
    '| vit | 0.500 [0.490, 0.520] | 0.250 [0.240, 0.270] |',
    '| conv | 0.750 [0.740, 0.770] | – |',
  ]);
});

test('reading the pairs names a bundle whose manifest has none', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'grid-'));
  try {
    for (const [name, provenance] of [['paired', { encoders: { image: 'conv', text: 'bag' } }], ['plain', { weights: 'trained' }]] as const) {
      await mkdir(join(dir, name));
      await writeFile(join(dir, name, 'stepframe.json'), JSON.stringify({ name, provenance }));
    }
    const dirs = [join(dir, 'paired'), join(dir, 'plain')];
    assert.deepEqual([...(await readEncoderPairs(dirs, ['paired']))], [['paired', { image: 'conv', text: 'bag' }]]);
    await assert.rejects(readEncoderPairs(dirs, ['paired', 'plain']), /bundle plain names no encoder pair \(provenance\.encoders/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
