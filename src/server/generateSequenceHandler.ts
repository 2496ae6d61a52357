import { randomUUID } from 'node:crypto';

import type { ServerWritableStream } from '@grpc/grpc-js';
import { type Span, SpanStatusCode, context, trace } from '@opentelemetry/api';

import { CancelledError } from '../pipeline/errors.js';
import type { StepImage } from '../pipeline/sequenceRequest.js';
import type { GenerateSequenceRequest, GenerateSequenceResponse } from '../generated/stepframe/v1/sequence_service.js';
import type { Config } from './config.js';
import { toGrpcError } from './errorStatus.js';
import type { Lifecycle } from './lifecycle.js';
import type { Logger } from './logger.js';
import { DeadlineExceededError, StalledReaderError } from './serverErrors.js';
import type { Telemetry } from './telemetry.js';
import { parseGenerateRequest } from './validateRequest.js';

type Call = ServerWritableStream<GenerateSequenceRequest, GenerateSequenceResponse>;

export interface StreamStats {
  /** Most encoded images one stream held unsent at once, over the server's life. */
  maxBufferedImages: number;
}

interface Deps {
  config: Config;
  lifecycle: Lifecycle;
  telemetry: Telemetry;
  log: Logger;
  stats: StreamStats;
}

const METHOD = 'GenerateSequence';

/** GenerateSequence: validate, admit, stream images with backpressure, stop on cancel or deadline. */
export function generateSequenceHandler(deps: Deps): (call: Call) => void {
  return (call) => {
    void deps.lifecycle.track(serve(deps, call));
  };
}

async function serve(deps: Deps, call: Call): Promise<void> {
  const requestId = randomUUID();
  const log = deps.log.child({ requestId, method: METHOD });
  const arrived = performance.now();
  const controller = new AbortController();
  const onCancelled = () => controller.abort(new CancelledError('the client cancelled the call'));
  call.on('cancelled', onCancelled);
  const deadlineTimer = armDeadline(call, controller);
  const span = deps.telemetry.tracer.startSpan(METHOD, { attributes: { 'stepframe.request_id': requestId } });
  let buffered = 0;
  let readerCaughtUp: (() => void) | null = null;
  const wrote = () => {
    buffered--;
    if (buffered < deps.config.maxBufferedImages) readerCaughtUp?.();
  };
  // Backpressure: the engine asks before each next image. A reader with too many images unsent
  // makes it wait (holding no generation slot) until the reader catches up, or ends the stream
  // once it has stalled for --max-stall-s.
  const readerReady = (): Promise<void> | null => {
    if (buffered < deps.config.maxBufferedImages) return null;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        readerCaughtUp = null;
        reject(new StalledReaderError(deps.config.maxStallS, buffered));
      }, deps.config.maxStallS * 1000);
      readerCaughtUp = () => {
        clearTimeout(timer);
        readerCaughtUp = null;
        resolve();
      };
    });
  };

  try {
    const engine = deps.lifecycle.engine();
    const request = await parseGenerateRequest(call.request, deps.config, (name) => engine.model(name));
    span.setAttributes({ 'stepframe.model': request.model, 'stepframe.steps': request.steps.length, 'stepframe.num_inference_steps': request.numInferenceSteps });
    log.info('sequence started', { model: request.model, steps: request.steps.length, seed: request.seed, scheduler: request.scheduler });
    const progress = call.request.streamProgress;
    let firstImageMs = 0;
    let images = 0;
    const imageSpans = new Map<number, Span>();
    const imageSpan = (stepIndex: number): Span => {
      let s = imageSpans.get(stepIndex);
      if (!s) {
        s = deps.telemetry.tracer.startSpan(`image ${stepIndex}`, {}, trace.setSpan(context.active(), span));
        imageSpans.set(stepIndex, s);
      }
      return s;
    };
    const stream = engine.generate(request, {
      signal: controller.signal,
      trace: span.spanContext(),
      onProgress: progress
        ? (p) => call.write({ event: { $case: 'progress', value: { stepIndex: p.stepIndex, denoisingStep: p.denoiseStep, denoisingSteps: p.denoiseSteps } } })
        : undefined,
      onStage: (stepIndex, stage, start, end) => deps.telemetry.recordStage(imageSpan(stepIndex), stage, start, end),
      readerReady,
    });
    for await (const image of stream) {
      if (images === 0) {
        firstImageMs = performance.now() - arrived;
        deps.telemetry.observeFirstImage(firstImageMs / 1000);
      }
      images++;
      imageSpan(image.stepIndex).end();
      deps.telemetry.countImage(request.model);
      buffered++;
      deps.stats.maxBufferedImages = Math.max(deps.stats.maxBufferedImages, buffered);
      call.write({ event: { $case: 'image', value: toProtoImage(image) } }, wrote);
    }
    const summary = {
      images,
      model: request.model,
      seed: request.seed,
      scheduler: request.scheduler,
      numInferenceSteps: request.numInferenceSteps,
      timeToFirstImageMs: firstImageMs,
      totalMs: performance.now() - arrived,
    };
    call.write({ event: { $case: 'summary', value: summary } });
    call.end();
    deps.telemetry.countRequest(METHOD, 'OK');
    log.info('sequence finished', { images, totalMs: Math.round(summary.totalMs), timeToFirstImageMs: Math.round(firstImageMs) });
  } catch (caught) {
    // An aborted signal's reason says why (client gone, deadline), whatever error surfaced first.
    const error = controller.signal.aborted ? controller.signal.reason : caught;
    const mapped = toGrpcError(error, requestId);
    deps.telemetry.countRequest(METHOD, mapped.label);
    span.setStatus({ code: SpanStatusCode.ERROR, message: mapped.label });
    if (mapped.internal) log.error('sequence failed', { error: caught });
    else log.info('sequence ended', { code: mapped.label, reason: mapped.message });
    if (!call.cancelled) call.emit('error', { code: mapped.code, details: mapped.message });
  } finally {
    clearTimeout(deadlineTimer);
    call.off('cancelled', onCancelled);
    span.end();
  }
}

/** The server stops work at the client's deadline itself, so it is not left computing for nobody. */
function armDeadline(call: Call, controller: AbortController): NodeJS.Timeout | undefined {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  if (!Number.isFinite(at)) return undefined;
  return setTimeout(() => controller.abort(new DeadlineExceededError()), Math.max(0, at - Date.now()));
}

function toProtoImage(image: StepImage) {
  return {
    stepIndex: image.stepIndex,
    stepText: image.text,
    data: image.bytes,
    mimeType: image.mimeType,
    width: image.width,
    height: image.height,
    seed: image.seed,
    timings: {
      textEncodeMs: image.timings.textEncodeMs,
      imageEncodeMs: image.timings.imageEncodeMs,
      fuseMs: image.timings.fuseMs,
      denoiseMs: image.timings.denoiseMs,
      decodeMs: image.timings.decodeMs,
      encodeMs: image.timings.encodeMs,
      totalMs: image.timings.totalMs,
    },
  };
}
