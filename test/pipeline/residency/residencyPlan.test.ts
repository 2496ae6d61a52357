import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { type ResidentBundle, planLoad } from '../../../src/pipeline/residency/residencyPlan.js';

// Each bundle holds a shared encoder (10 bytes) and its own UNet (100 bytes).
const sizes: Record<string, number> = { shared: 10, a: 100, b: 100, c: 100 };
const cost = (keys: ReadonlySet<string>) => [...keys].reduce((sum, key) => sum + sizes[key], 0);
const bundle = (name: string, users: number, lastUsed: number): ResidentBundle => ({ name, users, lastUsed, models: ['shared', name] });

describe('planLoad', () => {
  test('a bundle that fits loads with nothing unloaded; shared files count once', () => {
    assert.deepEqual(planLoad({ name: 'b', models: ['shared', 'b'] }, [bundle('a', 0, 1)], { budgetBytes: 210, maxLoaded: null }, cost), { kind: 'load', evict: [] });
  });

  test('the least recently used idle bundle leaves first, and only as many as needed', () => {
    const loaded = [bundle('a', 0, 5), bundle('b', 0, 2)];
    assert.deepEqual(planLoad({ name: 'c', models: ['shared', 'c'] }, loaded, { budgetBytes: 210, maxLoaded: null }, cost), { kind: 'load', evict: ['b'] });
    assert.deepEqual(planLoad({ name: 'c', models: ['shared', 'c'] }, loaded, { budgetBytes: 110, maxLoaded: null }, cost), { kind: 'load', evict: ['b', 'a'] });
  });

  test('a bundle in use is never picked: the load waits instead', () => {
    const loaded = [bundle('a', 1, 1), bundle('b', 2, 2)];
    assert.deepEqual(planLoad({ name: 'c', models: ['shared', 'c'] }, loaded, { budgetBytes: 210, maxLoaded: null }, cost), { kind: 'wait' });
    const oneIdle = [bundle('a', 1, 1), bundle('b', 0, 9)];
    assert.deepEqual(planLoad({ name: 'c', models: ['shared', 'c'] }, oneIdle, { budgetBytes: 210, maxLoaded: null }, cost), { kind: 'load', evict: ['b'] });
  });

  test('the count limit alone', () => {
    const loaded = [bundle('a', 0, 3), bundle('b', 0, 1)];
    assert.deepEqual(planLoad({ name: 'c', models: ['shared', 'c'] }, loaded, { budgetBytes: null, maxLoaded: 2 }, cost), { kind: 'load', evict: ['b'] });
    assert.deepEqual(planLoad({ name: 'c', models: ['shared', 'c'] }, loaded, { budgetBytes: null, maxLoaded: 3 }, cost), { kind: 'load', evict: [] });
  });

  test('a bundle larger than the whole budget can never load', () => {
    const plan = planLoad({ name: 'c', models: ['shared', 'c'] }, [], { budgetBytes: 100, maxLoaded: null }, cost);
    assert.equal(plan.kind, 'never');
  });
});
