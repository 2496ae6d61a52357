import { randomUUID } from 'node:crypto';

import { status as grpcStatus, type ServerWritableStream } from '@grpc/grpc-js';
import { type Span, SpanStatusCode } from '@opentelemetry/api';

import { CancelledError } from '../pipeline/errors.js';
import { endingError, toGrpcError } from './errorStatus.js';
import type { Lifecycle } from './lifecycle.js';
import type { Logger } from './logger.js';
import { type LongTimeout, setLongTimeout } from './longTimeout.js';
import { DeadlineExceededError, StalledReaderError } from './serverErrors.js';
import type { Telemetry } from './telemetry.js';

/** What a streaming handler gets besides its request. */
export interface StreamContext {
  requestId: string;
  /** Fires when the client cancels or the deadline passes; its reason says which. */
  signal: AbortSignal;
  log: Logger;
  span: Span;
  /**
   * Null while the client keeps up; otherwise a promise that resolves once it has caught up, and
   * rejects with StalledReaderError when it reads nothing for the stall limit. A producer asks
   * before making the next message, so it can pause instead of piling messages up.
   */
  readerReady(): Promise<void> | null;
  /**
   * Sends an advisory message (a progress event) through the same window as the stream's images
   * when it has room, and drops it when it has none: a reader that is behind gets the next one that
   * fits, and one that stopped reading piles nothing up and is paused and ended like any other.
   */
  notify(message: unknown): void;
}

/** A server-streaming RPC as a plain async generator: each yielded message is sent, in order. */
export type StreamHandler<Req, Res> = (request: Req, ctx: StreamContext) => AsyncIterable<Res>;

export interface StreamingOptions {
  method: string;
  lifecycle: Lifecycle;
  telemetry: Telemetry;
  log: Logger;
  /** Messages sent but not yet taken by the transport before the stream waits (`--max-buffered-images`). */
  window: number;
  /** Seconds a stream may wait for a client that reads nothing (`--max-stall-s`). */
  maxStallS: number;
}

/**
 * The gRPC side of a server-streaming call, for any handler: cancellation and the deadline become
 * one AbortSignal, writes wait for the transport (a bounded window of unacknowledged messages, and
 * `drain` when grpc-js's own buffer is full), and whatever the handler throws becomes a status in
 * one place (errorStatus.ts), counted by its code and logged once.
 *
 * The window is the server's own because grpc-js fixes its stream buffer at 16 messages: at
 * 512×512 a PNG is about 0.4 MB, and 16 of them per slow client is more memory than a stream
 * should hold.
 */
export function serverStreaming<Req, Res>(options: StreamingOptions, handler: StreamHandler<Req, Res>): (call: ServerWritableStream<Req, Res>) => void {
  return (call) => {
    void options.lifecycle.track(run(options, handler, call));
  };
}

async function run<Req, Res>(options: StreamingOptions, handler: StreamHandler<Req, Res>, call: ServerWritableStream<Req, Res>): Promise<void> {
  const requestId = randomUUID();
  const log = options.log.child({ requestId, method: options.method });
  const controller = new AbortController();
  const onCancelled = () => controller.abort(new CancelledError('the client cancelled the call'));
  call.on('cancelled', onCancelled);
  const deadlineTimer = armDeadline(call, controller);
  const span = options.telemetry.tracer.startSpan(options.method, { attributes: { 'stepframe.request_id': requestId } });
  const writer = new WindowedWriter(call, options.window, options.maxStallS, controller.signal);
  const ctx: StreamContext = {
    requestId,
    signal: controller.signal,
    log,
    span,
    readerReady: () => writer.room(),
    notify: (message) => writer.offer(message),
  };
  try {
    for await (const message of handler(call.request, ctx)) await writer.write(message);
    call.end();
    options.telemetry.countRequest(options.method, 'OK', 'OK');
  } catch (caught) {
    const mapped = toGrpcError(endingError(caught, controller.signal), requestId);
    options.telemetry.countRequest(options.method, mapped.code, grpcStatus[mapped.status]);
    span.setStatus({ code: SpanStatusCode.ERROR, message: mapped.code });
    if (mapped.internal) log.error('call failed', { code: mapped.code, error: caught });
    else log.info('call ended', { code: mapped.code, reason: mapped.message });
    if (!call.cancelled) call.emit('error', { code: mapped.status, details: mapped.message });
  } finally {
    deadlineTimer?.clear();
    call.off('cancelled', onCancelled);
    writer.close();
    span.end();
  }
}

/** The server stops work at the client's deadline itself, so it is not left computing for nobody. */
function armDeadline(call: ServerWritableStream<unknown, unknown>, controller: AbortController): LongTimeout | undefined {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  if (!Number.isFinite(at)) return undefined;
  // Chained, not one setTimeout: Node fires a timer past 2³¹−1 ms at once, which ended 40-day deadlines in 10 ms.
  return setLongTimeout(() => controller.abort(new DeadlineExceededError()), at - Date.now());
}

/** The subset of a grpc-js stream the writer needs (a Node Writable), so tests can hand it a fake. */
export interface MessageSink {
  write(message: unknown, callback: (error?: Error | null) => void): boolean;
  once(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

/**
 * Writes with a window of at most `window` messages the transport has not yet taken (their write
 * callbacks have not fired). `room()` is null while the window has space, else one shared promise
 * for the moment it has, which a reader that takes nothing for `maxStallS` turns into a
 * StalledReaderError.
 */
export class WindowedWriter {
  private unacknowledged = 0;
  private waiting: { promise: Promise<void>; resolve: () => void; timer: LongTimeout } | null = null;
  private stalled: StalledReaderError | null = null;

  constructor(
    private readonly sink: MessageSink,
    private readonly window: number,
    private readonly maxStallS: number,
    private readonly signal: AbortSignal,
  ) {}

  /** Messages written that the transport has not yet taken. */
  get pending(): number {
    return this.unacknowledged;
  }

  room(): Promise<void> | null {
    if (this.stalled) return Promise.reject(this.stalled);
    if (this.unacknowledged < this.window) return null;
    if (!this.waiting) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      const timer = setLongTimeout(() => this.stall(), this.maxStallS * 1000);
      this.waiting = { promise, resolve, timer };
    }
    const { promise } = this.waiting;
    return promise.then(() => {
      if (this.stalled) throw this.stalled;
    });
  }

  /** Waits for room in the window, writes, and waits for `drain` when the stream's own buffer is full. */
  async write(message: unknown): Promise<void> {
    // A loop, not an if: writers woken together by one acknowledgement take the room one at a time.
    for (let room = this.room(); room; room = this.room()) await abortable(room, this.signal);
    this.unacknowledged++;
    const accepted = this.sink.write(message, () => this.acknowledged());
    // The transport's own buffer is full: that wait is a stall like any other, ended after the limit.
    if (!accepted) await this.stallable(drained(this.sink, this.signal));
  }

  /** Writes `message` if the window has room now, else drops it; true when it was written. Never waits. */
  offer(message: unknown): boolean {
    if (this.stalled || this.signal.aborted || this.unacknowledged >= this.window) return false;
    this.unacknowledged++;
    this.sink.write(message, () => this.acknowledged());
    return true;
  }

  close(): void {
    this.waiting?.timer.clear();
  }

  /** `wait`, or StalledReaderError when it has not settled within the stall limit. */
  private stallable(wait: Promise<void>): Promise<void> {
    let timer: LongTimeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setLongTimeout(() => {
        this.stalled = new StalledReaderError(this.maxStallS, this.unacknowledged);
        reject(this.stalled);
      }, this.maxStallS * 1000);
    });
    return Promise.race([wait, limit]).finally(() => timer?.clear());
  }

  private acknowledged(): void {
    this.unacknowledged--;
    if (this.waiting && this.unacknowledged < this.window) this.release();
  }

  private stall(): void {
    this.stalled = new StalledReaderError(this.maxStallS, this.unacknowledged);
    this.release();
  }

  private release(): void {
    const waiting = this.waiting;
    this.waiting = null;
    if (!waiting) return;
    waiting.timer.clear();
    waiting.resolve();
  }
}

/**
 * The stream's next `drain`, or the signal's reason. Not events.once: it rejects on 'error', which
 * grpc-js emits for the status this server sends itself.
 */
function drained(sink: MessageSink, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    const onAbort = () => {
      sink.off('drain', onDrain);
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    sink.once('drain', onDrain);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** `work`, or the signal's reason as soon as the signal fires. */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
