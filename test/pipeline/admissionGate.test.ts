import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { AdmissionGate } from '../../src/pipeline/admissionGate.js';
import { CancelledError, OverloadedError } from '../../src/pipeline/errors.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('AdmissionGate', () => {
  test('admits up to the active limit, queues oldest first, refuses past the queue limit', async () => {
    const gate = new AdmissionGate({ maxActiveSequences: 2, maxQueuedSequences: 2 });
    const a = await gate.acquire();
    await gate.acquire();
    const order: string[] = [];
    const c = gate.acquire().then((release) => (order.push('c'), release));
    const d = gate.acquire().then((release) => (order.push('d'), release));
    await tick();
    assert.deepEqual([gate.activeCount, gate.queuedCount], [2, 2]);
    await assert.rejects(gate.acquire(), OverloadedError);
    a();
    a(); // a second release of the same slot does nothing
    await tick();
    assert.deepEqual(order, ['c']);
    assert.deepEqual([gate.activeCount, gate.queuedCount], [2, 1]);
    (await c)();
    await d;
    assert.deepEqual(order, ['c', 'd']);
  });

  test('a waiter cancelled in the queue leaves it and never gets a slot', async () => {
    const gate = new AdmissionGate({ maxActiveSequences: 1, maxQueuedSequences: 4 });
    const first = await gate.acquire();
    const controller = new AbortController();
    const cancelled = gate.acquire(controller.signal);
    const next = gate.acquire();
    controller.abort();
    await assert.rejects(cancelled, CancelledError);
    assert.equal(gate.queuedCount, 1);
    first();
    const release = await next;
    assert.equal(gate.activeCount, 1);
    release();
    assert.equal(gate.activeCount, 0);
  });

  test('a paused sequence frees its slot, counts against the queue limit, and resumes ahead of the queue without refusal', async () => {
    const gate = new AdmissionGate({ maxActiveSequences: 1, maxQueuedSequences: 1 });
    const paused = gate.pause(await gate.acquire());
    assert.deepEqual([gate.activeCount, gate.pausedCount], [0, 1]);
    const other = await gate.acquire(); // the freed slot
    // The queue limit (1) is taken by the paused sequence: new work is refused.
    await assert.rejects(gate.acquire(), OverloadedError);
    const resumed = paused.resume();
    await tick();
    assert.deepEqual([gate.pausedCount, gate.queuedCount], [0, 1]);
    const queued = gate.acquire().catch((error: unknown) => error);
    assert.ok((await queued) instanceof OverloadedError, 'the resumed sequence holds the only queue place');
    other();
    const release = await resumed;
    assert.equal(gate.activeCount, 1);
    release();
    assert.equal(gate.activeCount, 0);
  });

  test('leaving a pause (a stalled or vanished reader) returns its queue place', async () => {
    const gate = new AdmissionGate({ maxActiveSequences: 1, maxQueuedSequences: 1 });
    const paused = gate.pause(await gate.acquire());
    paused.leave();
    paused.leave();
    assert.equal(gate.pausedCount, 0);
    (await gate.acquire())();
  });
});
