import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { nextBatch } from '../../../src/pipeline/batching/nextBatch.js';

const entry = (id: string, rows: number, extra: { aborted?: boolean; groupKey?: number } = {}) => {
  const controller = new AbortController();
  if (extra.aborted) controller.abort();
  return { id, rows, signal: controller.signal, groupKey: extra.groupKey };
};

describe('nextBatch', () => {
  test('takes the oldest requests first, up to maxBatch rows, never splitting one', () => {
    const queue = [entry('a', 2), entry('b', 3), entry('c', 2), entry('d', 2)];
    const { batch, rest } = nextBatch(queue, 6);
    assert.deepEqual(batch.map((e) => e.id), ['a', 'b']);
    assert.deepEqual(rest.map((e) => e.id), ['c', 'd']);
  });

  test('a later smaller request fills the space an oversized one leaves', () => {
    const { batch } = nextBatch([entry('a', 3), entry('b', 3), entry('c', 1)], 4);
    assert.deepEqual(batch.map((e) => e.id), ['a', 'c']);
  });

  test('a request larger than maxBatch runs alone instead of starving', () => {
    const { batch, rest } = nextBatch([entry('a', 5), entry('b', 1)], 4);
    assert.deepEqual(batch.map((e) => e.id), ['a']);
    assert.deepEqual(rest.map((e) => e.id), ['b']);
  });

  test('cancelled requests are dropped and take no slot', () => {
    const { batch, dropped } = nextBatch([entry('a', 2, { aborted: true }), entry('b', 2), entry('c', 2)], 4);
    assert.deepEqual(batch.map((e) => e.id), ['b', 'c']);
    assert.deepEqual(dropped.map((e) => e.id), ['a']);
  });

  test('with group keys (a single-timestep UNet) only the oldest request\'s group is batched', () => {
    const { batch, rest } = nextBatch([entry('a', 2, { groupKey: 981 }), entry('b', 2, { groupKey: 961 }), entry('c', 2, { groupKey: 981 })], 8);
    assert.deepEqual(batch.map((e) => e.id), ['a', 'c']);
    assert.deepEqual(rest.map((e) => e.id), ['b']);
  });

  test('maxEntries splits by requests, leaving the rest for another executor', () => {
    const { batch, rest } = nextBatch([entry('a', 2), entry('b', 3), entry('c', 2), entry('d', 2)], 16, 2);
    assert.deepEqual(batch.map((e) => e.id), ['a', 'b']);
    assert.deepEqual(rest.map((e) => e.id), ['c', 'd']);
  });
});
