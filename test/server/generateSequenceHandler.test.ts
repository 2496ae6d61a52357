/** The GenerateSequence handler over a fake engine: what it counts and traces when images are sent, fail or never leave. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { Span } from '@opentelemetry/api';
import { BasicTracerProvider, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

import { GenerateSequenceRequest } from '../../src/generated/stepframe/v1/sequence_service.js';
import type { ModelInfo } from '../../src/pipeline/engine.js';
import { ModelFailureError } from '../../src/pipeline/errors.js';
import type { SequenceHooks, SequenceRequest, StepImage } from '../../src/pipeline/sequenceRequest.js';
import { parseConfig } from '../../src/server/config.js';
import { generateSequence } from '../../src/server/generateSequenceHandler.js';
import type { Lifecycle } from '../../src/server/lifecycle.js';
import { createLogger } from '../../src/server/logger.js';
import type { StreamContext } from '../../src/server/serverStreaming.js';
import type { Telemetry } from '../../src/server/telemetry.js';

/** Records which spans started and which ended. */
class RecordingProcessor implements SpanProcessor {
  readonly started = new Set<string>();
  readonly ended = new Map<string, ReadableSpan>();
  onStart(span: Span): void {
    this.started.add(span.spanContext().spanId);
  }
  onEnd(span: ReadableSpan): void {
    this.ended.set(span.spanContext().spanId, span);
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

const MODEL: ModelInfo = {
  name: 'fake', fuserKind: 'concatenation', width: 64, height: 64, imageGuidance: false,
  defaults: { scheduler: 'ddpm', numInferenceSteps: 2, guidanceScale: 4, imageGuidanceScale: 1 }, schedulers: ['ddpm'], provider: 'cpu',
  isDefault: true, pooledImageOutput: 'pooler_output', timestepInput: 'per_row', imagePreprocess: null, state: 'loaded',
};

/** An engine that makes `images` images (each opening its span through onStage), then fails if `failAfter` says so. */
function fakeEngine(images: number, failAfter?: number) {
  return {
    model: () => MODEL,
    async *generate(request: SequenceRequest, hooks: SequenceHooks): AsyncGenerator<StepImage> {
      for (let i = 0; i < images; i++) {
        hooks.onStage?.(i, 'denoiseMs', performance.now(), performance.now());
        if (i === failAfter) throw new ModelFailureError('the UNet failed');
        yield { stepIndex: i, text: request.steps[i], bytes: Buffer.from('png'), mimeType: 'image/png', width: 64, height: 64, seed: 1n, timings: {} as StepImage['timings'], rgb: {} as StepImage['rgb'], previousFrameSimilarity: null };
      }
    },
  };
}

function harness(engine: ReturnType<typeof fakeEngine>) {
  const processor = new RecordingProcessor();
  const tracer = new BasicTracerProvider({ spanProcessors: [processor] }).getTracer('test');
  const counted: string[] = [];
  const telemetry = {
    tracer,
    countImage: (model: string) => counted.push(model),
    observeFirstImage: () => undefined,
    recordStage: () => undefined,
  } as unknown as Telemetry;
  const lifecycle = { engine: () => engine } as unknown as Lifecycle;
  const handler = generateSequence({ config: parseConfig([], {}), lifecycle, telemetry });
  const span = tracer.startSpan('call');
  const ctx: StreamContext = { requestId: 'r', signal: new AbortController().signal, log: createLogger('error', () => undefined), span, readerReady: () => null, notify: () => undefined };
  const request = GenerateSequenceRequest.fromPartial({ steps: ['chop', 'stir', 'serve'] });
  const openImageSpans = () => [...processor.started].filter((id) => !processor.ended.has(id) && id !== span.spanContext().spanId);
  return { iterator: handler(request, ctx)[Symbol.asyncIterator](), counted, processor, openImageSpans };
}

describe('GenerateSequence handler', () => {
  test('an image is counted once the transport took it: one whose write failed is not counted as generated', async () => {
    const { iterator, counted } = harness(fakeEngine(3));
    assert.equal((await iterator.next()).value.event.$case, 'image');
    assert.equal((await iterator.next()).value.event.$case, 'image'); // the first image was sent
    await iterator.return!(undefined); // writing the second failed: the adapter stops the handler
    assert.deepEqual(counted, ['fake'], 'only the image the transport took');
  });

  test('spans of images that fail or are never sent are ended, with an error status', async () => {
    const failing = harness(fakeEngine(3, 1));
    await failing.iterator.next();
    await assert.rejects(failing.iterator.next(), ModelFailureError);
    assert.deepEqual(failing.openImageSpans(), [], 'the failed image\'s span was ended');
    const failed = [...failing.processor.ended.values()].find((s) => s.name === 'image 1');
    assert.equal(failed?.status.code, 2 /* ERROR */);

    const abandoned = harness(fakeEngine(3));
    await abandoned.iterator.next();
    await abandoned.iterator.return!(undefined);
    assert.deepEqual(abandoned.openImageSpans(), [], 'the unsent image\'s span was ended');
  });

  test('a sequence sent whole ends every image span with no error and counts every image', async () => {
    const { iterator, counted, processor, openImageSpans } = harness(fakeEngine(3));
    const events: string[] = [];
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) events.push(r.value.event!.$case);
    assert.deepEqual(events, ['image', 'image', 'image', 'summary']);
    assert.equal(counted.length, 3);
    assert.deepEqual(openImageSpans(), []);
    assert.ok([...processor.ended.values()].filter((s) => s.name.startsWith('image')).every((s) => s.status.code !== 2));
  });
});
