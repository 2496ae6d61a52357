import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { parseMemoryBudget, resolveMemoryBudget } from '../../../src/pipeline/residency/memoryBudget.js';

describe('--memory-budget', () => {
  test('sizes in bytes, SI and binary units; none and auto', () => {
    assert.deepEqual(parseMemoryBudget('25769803776'), { kind: 'bytes', bytes: 25769803776 });
    assert.deepEqual(parseMemoryBudget('24GiB'), { kind: 'bytes', bytes: 24 * 2 ** 30 });
    assert.deepEqual(parseMemoryBudget('1.5G'), { kind: 'bytes', bytes: 1.5e9 });
    assert.deepEqual(parseMemoryBudget('512 MiB'), { kind: 'bytes', bytes: 512 * 2 ** 20 });
    assert.deepEqual(parseMemoryBudget(''), { kind: 'unlimited' });
    assert.deepEqual(parseMemoryBudget('none'), { kind: 'unlimited' });
    assert.deepEqual(parseMemoryBudget('AUTO'), { kind: 'auto' });
  });

  test('anything else is refused with the accepted forms named', () => {
    for (const bad of ['24 parsecs', '-1G', '0', 'GiB', '1e9']) assert.throws(() => parseMemoryBudget(bad), /auto, none, or a size|more than 0/, bad);
  });

  test('auto is the machine less max(25%, 2 GiB)', () => {
    assert.equal(resolveMemoryBudget({ kind: 'auto' }, 24 * 2 ** 30), 18 * 2 ** 30);
    assert.equal(resolveMemoryBudget({ kind: 'auto' }, 4 * 2 ** 30), 2 * 2 ** 30);
    assert.equal(resolveMemoryBudget({ kind: 'unlimited' }, 4 * 2 ** 30), null);
    assert.equal(resolveMemoryBudget({ kind: 'bytes', bytes: 7 }, 4 * 2 ** 30), 7);
  });
});
