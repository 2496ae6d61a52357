/** The streaming adapter's flow control, against a fake transport whose acknowledgements the test releases. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';

import { CancelledError } from '../../src/pipeline/errors.js';
import { type MessageSink, WindowedWriter } from '../../src/server/serverStreaming.js';
import { StalledReaderError } from '../../src/server/serverErrors.js';

/** A transport that takes messages only when told to, and reports a full buffer past `highWaterMark`. */
class FakeSink extends EventEmitter implements MessageSink {
  readonly written: unknown[] = [];
  private readonly callbacks: (() => void)[] = [];

  constructor(private readonly highWaterMark = 16) {
    super();
  }

  write(message: unknown, callback: () => void): boolean {
    this.written.push(message);
    this.callbacks.push(callback);
    return this.callbacks.length < this.highWaterMark;
  }

  /** The transport takes the oldest `n` messages. */
  take(n = 1): void {
    for (let i = 0; i < n; i++) this.callbacks.shift()?.();
    if (this.callbacks.length === 0) this.emit('drain');
  }
}

const tick = () => new Promise((r) => setImmediate(r));

describe('WindowedWriter', () => {
  test('never holds more than its window of unacknowledged messages, and keeps their order', async () => {
    const sink = new FakeSink();
    const writer = new WindowedWriter(sink, 2, 60, new AbortController().signal);
    const writes = [1, 2, 3, 4, 5].map((n) => writer.write(n));
    await tick();
    assert.deepEqual(sink.written, [1, 2], 'the third write waits for room');
    assert.equal(writer.pending, 2);
    sink.take();
    await tick();
    assert.deepEqual(sink.written, [1, 2, 3]);
    sink.take(3);
    await Promise.all(writes);
    assert.deepEqual(sink.written, [1, 2, 3, 4, 5]);
    assert.ok(writer.pending <= 2);
    writer.close();
  });

  test('room() is null while the window has space and one promise until it has', async () => {
    const sink = new FakeSink();
    const writer = new WindowedWriter(sink, 1, 60, new AbortController().signal);
    assert.equal(writer.room(), null);
    await writer.write('a');
    const waiting = writer.room();
    assert.ok(waiting, 'a full window asks the producer to wait');
    let resolved = false;
    void waiting.then(() => (resolved = true));
    await tick();
    assert.equal(resolved, false);
    sink.take();
    await tick();
    assert.equal(resolved, true);
    assert.equal(writer.room(), null);
    writer.close();
  });

  test('a reader that takes nothing for the stall limit turns the wait into StalledReaderError', async () => {
    const sink = new FakeSink();
    const writer = new WindowedWriter(sink, 1, 0.05, new AbortController().signal);
    await writer.write('a');
    await assert.rejects(writer.room()!, (error: unknown) => error instanceof StalledReaderError && /read nothing for 0\.05 s while 1 message/.test(error.message));
    await assert.rejects(writer.write('b'), StalledReaderError, 'later writes fail at once');
    assert.deepEqual(sink.written, ['a']);
    writer.close();
  });

  test('a cancelled call stops waiting for room with the cancellation', async () => {
    const sink = new FakeSink();
    const controller = new AbortController();
    const writer = new WindowedWriter(sink, 1, 60, controller.signal);
    await writer.write('a');
    const blocked = writer.write('b');
    controller.abort(new CancelledError('the client cancelled the call'));
    await assert.rejects(blocked, CancelledError);
    assert.deepEqual(sink.written, ['a']);
    writer.close();
  });

  test('a full transport buffer waits for drain even inside the window', async () => {
    const sink = new FakeSink(2);
    const writer = new WindowedWriter(sink, 8, 60, new AbortController().signal);
    await writer.write(1);
    let second = false;
    const pending = writer.write(2).then(() => (second = true));
    await tick();
    assert.equal(second, false, 'write() returned false: wait for drain');
    sink.take(2);
    await pending;
    assert.equal(second, true);
    writer.close();
  });

  test('offer() writes an advisory message while the window has room and drops it when full, never waiting', async () => {
    const sink = new FakeSink();
    const writer = new WindowedWriter(sink, 2, 60, new AbortController().signal);
    assert.equal(writer.offer('progress 1'), true);
    await writer.write('image 1');
    assert.equal(writer.offer('progress 2'), false, 'the window is full: dropped, not queued');
    assert.deepEqual(sink.written, ['progress 1', 'image 1']);
    assert.ok(writer.room(), 'offered messages count in the window, so the producer is asked to pause');
    sink.take(2);
    await tick();
    assert.equal(writer.offer('progress 3'), true);
    writer.close();
  });

  test('a reader that stopped reading after progress events is a stall: room() fails after the limit', async () => {
    const sink = new FakeSink();
    const writer = new WindowedWriter(sink, 2, 0.05, new AbortController().signal);
    for (let i = 0; i < 10; i++) writer.offer(`progress ${i}`);
    assert.equal(sink.written.length, 2, 'at most a window of progress events is ever pending');
    await assert.rejects(writer.room()!, StalledReaderError);
    writer.close();
  });

  test('a transport buffer that never drains fails the write with StalledReaderError after the limit (it waited forever)', async () => {
    const sink = new FakeSink(1);
    const writer = new WindowedWriter(sink, 8, 0.05, new AbortController().signal);
    const t0 = performance.now();
    await assert.rejects(writer.write('a'), (error: unknown) => error instanceof StalledReaderError && /0\.05 s/.test(error.message));
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(writer.offer('progress'), false, 'nothing more is written to a stalled stream');
    writer.close();
  });
});
