import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CLAMPED_TIMEOUT, clampTimeoutHeader } from '../../src/server/longDeadlines.js';
import { MAX_TIMER_MS, setLongTimeout } from '../../src/server/longTimeout.js';

test('a wait past Node\'s 2^31-1 ms timer limit fires at its time, not at once', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let fired = false;
  setLongTimeout(() => (fired = true), MAX_TIMER_MS + 5000);
  t.mock.timers.tick(10);
  assert.equal(fired, false, 'a plain setTimeout would have fired here');
  t.mock.timers.tick(MAX_TIMER_MS);
  assert.equal(fired, false);
  t.mock.timers.tick(5000);
  assert.equal(fired, true);
});

test('clear() cancels whichever link of the chain is pending', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let fired = false;
  const timeout = setLongTimeout(() => (fired = true), 2 * MAX_TIMER_MS);
  t.mock.timers.tick(MAX_TIMER_MS + 1);
  timeout.clear();
  t.mock.timers.tick(2 * MAX_TIMER_MS);
  assert.equal(fired, false);
});

test('a grpc-timeout header past Node\'s timer limit is clamped to 24.8 days; shorter ones and malformed ones are left alone', () => {
  assert.equal(clampTimeoutHeader('3456000S'), CLAMPED_TIMEOUT); // 40 days
  assert.equal(clampTimeoutHeader('960H'), CLAMPED_TIMEOUT);
  assert.equal(clampTimeoutHeader('2147483S'), '2147483S');
  assert.equal(clampTimeoutHeader('99999999m'), '99999999m'); // 27.8 hours
  assert.equal(clampTimeoutHeader('5x'), '5x');
  assert.equal(CLAMPED_TIMEOUT, '2147483S');
});
