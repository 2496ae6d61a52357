/**
 * The batching loop's rules, against fake executors whose calls the test finishes by hand: when a
 * partial batch runs (full, every participant queued, or the oldest has waited long enough), who it
 * waits for, and what cancellation does.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { type BatchReport, BatchedModel } from '../../../src/pipeline/batching/batchedModel.js';
import type { Feeds } from '../../../src/pipeline/batching/feeds.js';
import type { OnnxModel } from '../../../src/pipeline/bundle/onnxModel.js';
import { CancelledError } from '../../../src/pipeline/errors.js';
import type { Lease } from '../../../src/pipeline/execution/executorPool.js';
import type { WireFeed, WireOutputs } from '../../../src/pipeline/execution/protocol.js';

interface Call {
  rows: number[];
  finish(): void;
}

/** `executors` fake executors: a call doubles its input `x` and returns once the test calls finish(). */
function fakeModel(executors: number) {
  const calls: Call[] = [];
  let idle = executors;
  const waiters: ((lease: Lease) => void)[] = [];
  const lease = (index: number): Lease => ({
    executor: {
      index,
      run: (_id: number, feeds: Record<string, WireFeed>): Promise<WireOutputs> =>
        new Promise((resolve) => {
          const x = feeds.x.data as Float32Array;
          calls.push({ rows: Array.from(x), finish: () => resolve({ y: { data: x.map((v) => v * 2), dims: feeds.x.dims } }) });
        }),
    } as unknown as Lease['executor'],
    release: () => {
      const next = waiters.shift();
      if (next) next(lease(index));
      else idle++;
    },
  });
  const pool = {
    get idleCount() {
      return idle;
    },
    lease: () => {
      if (idle > 0) return Promise.resolve(lease(executors - idle--));
      return new Promise<Lease>((resolve) => waiters.push(resolve));
    },
  };
  return { model: { id: 1, file: 'fake/unet/model.onnx', executors: pool } as unknown as OnnxModel, calls };
}

/** One request of one row whose value is `value`. */
const row = (value: number, signal?: AbortSignal) => ({ feeds: { x: { type: 'float32', data: new Float32Array([value]), dims: [1, 1] } } satisfies Feeds, rows: 1, signal });
const settle = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('BatchedModel', () => {
  test('a partial batch waits for every joined sequence, then runs once with all of them', async () => {
    const { model, calls } = fakeModel(1);
    const batched = new BatchedModel(model, ['y'], { maxBatch: 16, maxQueueDelayMs: 10_000 });
    const leave = [batched.join(), batched.join(), batched.join()];
    const first = [batched.run(row(1)), batched.run(row(2))];
    await settle();
    assert.equal(calls.length, 0, 'two of three participants queued: wait for the third');
    const third = batched.run(row(3));
    await settle();
    assert.deepEqual(calls.map((c) => c.rows), [[1, 2, 3]]);
    calls[0].finish();
    assert.deepEqual((await Promise.all([...first, third])).map((o) => Array.from(o.y.data)), [[2], [4], [6]], 'each request gets its own slice');
    leave.forEach((l) => l());
  });

  test('a full batch runs at once, whoever has not queued yet', async () => {
    const { model, calls } = fakeModel(1);
    const batched = new BatchedModel(model, ['y'], { maxBatch: 2, maxQueueDelayMs: 10_000 });
    for (let i = 0; i < 5; i++) batched.join();
    void batched.run(row(1));
    void batched.run(row(2));
    await settle();
    assert.deepEqual(calls.map((c) => c.rows), [[1, 2]]);
  });

  test('the oldest request waits at most maxQueueDelayMs for missing participants', async () => {
    const { model, calls } = fakeModel(1);
    const batched = new BatchedModel(model, ['y'], { maxBatch: 16, maxQueueDelayMs: 60 });
    batched.join();
    batched.join();
    const started = performance.now();
    void batched.run(row(1));
    await settle(30);
    assert.equal(calls.length, 0, 'still within the delay');
    for (let i = 0; i < 100 && calls.length === 0; i++) await settle(5);
    assert.deepEqual(calls.map((c) => c.rows), [[1]]);
    assert.ok(performance.now() - started >= 55, 'not before the delay');
  });

  test('a participant that leaves is no longer waited for', async () => {
    const { model, calls } = fakeModel(1);
    const batched = new BatchedModel(model, ['y'], { maxBatch: 16, maxQueueDelayMs: 10_000 });
    batched.join();
    const leave = batched.join();
    void batched.run(row(1));
    await settle();
    assert.equal(calls.length, 0);
    leave();
    await settle();
    assert.deepEqual(calls.map((c) => c.rows), [[1]], 'ran as soon as the other sequence left, not at the 10 s delay');
  });

  test('a sequence whose rows are inside a running call is not waited for', async () => {
    const { model, calls } = fakeModel(2);
    const batched = new BatchedModel(model, ['y'], { maxBatch: 1, maxQueueDelayMs: 10_000 });
    batched.join();
    batched.join();
    void batched.run(row(1)); // full at one row: runs on executor 0 and stays in flight
    await settle();
    void batched.run(row(2)); // the only participant not in a call has queued: ready
    await settle();
    assert.deepEqual(calls.map((c) => c.rows), [[1], [2]]);
  });

  test('rows queued while every executor is busy join the next call instead of waiting behind it one by one', async () => {
    const { model, calls } = fakeModel(1);
    const reports: BatchReport[] = [];
    const batched = new BatchedModel(model, ['y'], { maxBatch: 16, maxQueueDelayMs: 0 }, (r) => reports.push(r));
    void batched.run(row(1));
    await settle();
    const later = [batched.run(row(2)), batched.run(row(3)), batched.run(row(4))];
    await settle();
    assert.equal(calls.length, 1, 'the only executor is busy');
    calls[0].finish();
    await settle();
    assert.deepEqual(calls.map((c) => c.rows), [[1], [2, 3, 4]]);
    calls[1].finish();
    await Promise.all(later);
    assert.deepEqual(reports.map((r) => [r.rows, r.requests]), [[1, 1], [3, 3]]);
  });

  test('a cancelled request leaves the queue at once and never reaches an executor', async () => {
    const { model, calls } = fakeModel(1);
    const batched = new BatchedModel(model, ['y'], { maxBatch: 16, maxQueueDelayMs: 10_000 });
    batched.join();
    batched.join();
    const controller = new AbortController();
    const cancelled = batched.run(row(7, controller.signal));
    assert.equal(batched.queuedRows, 1);
    controller.abort();
    await assert.rejects(cancelled, CancelledError);
    assert.equal(batched.queuedRows, 0);
    void batched.run(row(8));
    void batched.run(row(9));
    await settle();
    assert.deepEqual(calls.map((c) => c.rows), [[8, 9]]);
    await assert.rejects(batched.run(row(1, AbortSignal.abort())), CancelledError, 'an already cancelled request is refused');
  });
});
