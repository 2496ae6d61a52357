import { type Span, SpanStatusCode, context, trace } from '@opentelemetry/api';

import type { StepImage } from '../pipeline/sequenceRequest.js';
import type { GenerateSequenceRequest, GenerateSequenceResponse } from '../generated/stepframe/v1/sequence_service.js';
import type { Config } from './config.js';
import type { Lifecycle } from './lifecycle.js';
import type { StreamHandler } from './serverStreaming.js';
import type { Telemetry } from './telemetry.js';
import { parseGenerateRequest } from './validateRequest.js';

interface Deps {
  config: Config;
  lifecycle: Lifecycle;
  telemetry: Telemetry;
}

/**
 * GenerateSequence over engine events: validate the request, then one image message per step as
 * the engine makes it (progress in between when asked for), then the summary. Transport, flow
 * control, cancellation and status mapping are serverStreaming's.
 */
export function generateSequence(deps: Deps): StreamHandler<GenerateSequenceRequest, GenerateSequenceResponse> {
  return async function* (message, ctx) {
    const arrived = performance.now();
    const engine = deps.lifecycle.engine();
    const request = await parseGenerateRequest(message, deps.config, (name) => engine.model(name));
    ctx.span.setAttributes({ 'stepframe.model': request.model, 'stepframe.steps': request.steps.length, 'stepframe.num_inference_steps': request.numInferenceSteps });
    ctx.log.info('sequence started', { model: request.model, steps: request.steps.length, seed: request.seed, scheduler: request.scheduler });
    const imageSpans = new ImageSpans(deps.telemetry, ctx.span);
    const stream = engine.generate(request, {
      signal: ctx.signal,
      trace: ctx.span.spanContext(),
      onProgress: message.streamProgress
        ? (p) => ctx.notify({ event: { $case: 'progress', value: { stepIndex: p.stepIndex, denoisingStep: p.denoiseStep, denoisingSteps: p.denoiseSteps } } })
        : undefined,
      onStage: (stepIndex, stage, start, end) => deps.telemetry.recordStage(imageSpans.of(stepIndex), stage, start, end),
      // A reader with a full window pauses the sequence, holding no generation slot, until it catches up.
      readerReady: ctx.readerReady,
    });
    let firstImageMs = 0;
    let images = 0;
    try {
      for await (const image of stream) {
        if (images === 0) {
          firstImageMs = performance.now() - arrived;
          deps.telemetry.observeFirstImage(firstImageMs / 1000);
        }
        yield { event: { $case: 'image', value: toProtoImage(image) } };
        // Resumed only once the transport took the message: an image whose write failed is not counted as generated.
        images++;
        imageSpans.end(image.stepIndex);
        deps.telemetry.countImage(request.model);
      }
    } finally {
      // An image that failed, was cancelled or never reached the client still ends its span, marked as such.
      imageSpans.endOpen();
    }
    const totalMs = performance.now() - arrived;
    yield {
      event: {
        $case: 'summary',
        value: { images, model: request.model, seed: request.seed, scheduler: request.scheduler, numInferenceSteps: request.numInferenceSteps, timeToFirstImageMs: firstImageMs, totalMs },
      },
    };
    ctx.log.info('sequence finished', { images, totalMs: Math.round(totalMs), timeToFirstImageMs: Math.round(firstImageMs) });
  };
}

/** One span per image, a child of the call's, opened by its first stage and ended when the image is sent. */
class ImageSpans {
  private readonly spans = new Map<number, Span>();

  constructor(
    private readonly telemetry: Telemetry,
    private readonly parent: Span,
  ) {}

  of(stepIndex: number): Span {
    let span = this.spans.get(stepIndex);
    if (!span) {
      span = this.telemetry.tracer.startSpan(`image ${stepIndex}`, {}, trace.setSpan(context.active(), this.parent));
      this.spans.set(stepIndex, span);
    }
    return span;
  }

  /** The image was sent. */
  end(stepIndex: number): void {
    this.of(stepIndex).end();
    this.spans.delete(stepIndex);
  }

  /** Ends every span of an image that was not sent, with an error status. */
  endOpen(): void {
    for (const span of this.spans.values()) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'the image was not sent' });
      span.end();
    }
    this.spans.clear();
  }
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
    ...(image.previousFrameSimilarity === null ? {} : { previousFrameSimilarity: image.previousFrameSimilarity }),
  };
}
