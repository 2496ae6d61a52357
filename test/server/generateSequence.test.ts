import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { status, type ServiceError } from '@grpc/grpc-js';
import sharp from 'sharp';

import { type SequenceEvent, StepframeClient } from '../../clients/typescript/stepframeClient.js';
import { SamplingPreset } from '../../clients/typescript/generated/stepframe/v1/sequence_service.js';
import { Engine } from '../../src/pipeline/engine.js';
import { checkHealth } from '../../src/server/healthProbe.js';
import { ShutdownDuringLoadError } from '../../src/server/stepframeServer.js';
import { type TestServer, startTestServer } from '../helpers/testServer.js';

async function events(iterable: AsyncIterable<SequenceEvent>): Promise<SequenceEvent[]> {
  const all: SequenceEvent[] = [];
  for await (const e of iterable) all.push(e);
  return all;
}

async function rejectsWith(promise: Promise<unknown>, code: status, detail?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: ServiceError) => {
    assert.equal(error.code, code, `expected ${status[code]}, got ${status[error.code]}: ${error.details}`);
    if (detail) assert.match(error.details, detail);
    return true;
  });
}

/** Milliseconds one short 2-step request takes from the client's side. */
async function timeShortRequest(client: StepframeClient): Promise<number> {
  const t0 = performance.now();
  await events(client.generate({ steps: ['boil the rice'], numInferenceSteps: 2, seed: 99n }));
  return performance.now() - t0;
}

describe('GenerateSequence over real gRPC', () => {
  test('a 3-step recipe streams 3 decodable images in order, then the summary', async (t) => {
    const { client } = await startTestServer(t);
    const steps = ['chop the carrots', 'add the carrots to the pan', 'stir everything together'];
    const all = await events(client.generate({ steps, numInferenceSteps: 4, seed: 11n, streamProgress: true }));
    const images = all.filter((e) => e.$case === 'image');
    assert.deepEqual(images.map((e) => e.value.stepIndex), [0, 1, 2]);
    assert.deepEqual(images.map((e) => e.value.stepText), steps);
    for (const image of images) {
      const meta = await sharp(image.value.data).metadata();
      assert.equal(meta.format, 'png');
      assert.equal(meta.width, 64);
      assert.ok(image.value.timings!.denoiseMs > 0);
    }
    assert.equal(all.filter((e) => e.$case === 'progress').length, 12);
    const last = all.at(-1)!;
    assert.equal(last.$case, 'summary');
    if (last.$case === 'summary') {
      assert.equal(last.value.images, 3);
      assert.equal(last.value.seed, 11n);
      assert.ok(last.value.timeToFirstImageMs > 0 && last.value.totalMs >= last.value.timeToFirstImageMs);
    }
  });

  test('a worker that exits mid-call fails its request with UNAVAILABLE; health is NOT_SERVING until it is replaced', async (t) => {
    const { server, client, address } = await startTestServer(t);
    const engine = await server.ready;
    const healthWhenLost: Promise<string>[] = [];
    engine.onHealthChange((healthy) => void (!healthy && healthWhenLost.push(checkHealth(address))));
    const replaced = () => new Promise<void>((resolve) => engine.onHealthChange((healthy) => healthy && resolve()));
    // Both executors are armed, so whichever takes the call exits in the middle of it.
    await engine.exitExecutorOnNextCall(0);
    await engine.exitExecutorOnNextCall(1);
    const request = { steps: ['boil the rice'], numInferenceSteps: 2 };
    let failures = 0;
    for (;;) {
      const back = replaced();
      try {
        const again = await events(client.generate(request));
        assert.equal(again.filter((e) => e.$case === 'image').length, 1);
        break;
      } catch (error) {
        assert.equal((error as ServiceError).code, status.UNAVAILABLE, String(error));
        assert.match((error as ServiceError).details, /executor \d exited with code 70.*retry/);
        failures++;
        assert.ok(failures <= 2, 'only the two armed executors fail');
        await back;
        assert.equal(await checkHealth(address), 'SERVING');
      }
    }
    assert.ok(failures >= 1);
    assert.deepEqual(await Promise.all(healthWhenLost), Array(failures).fill('NOT_SERVING'));
    assert.equal(engine.stats().executors.restarts, failures);
  });

  test("an unset image_guidance_scale is the model's default, not joint guidance", async (t) => {
    const { client } = await startTestServer(t);
    const request = { steps: ['chop the carrots', 'add the carrots to the pan'], numInferenceSteps: 3, seed: 5n, guidanceScale: 7.5 };
    const pixels = async (extra: { imageGuidanceScale?: number }) =>
      (await events(client.generate({ ...request, ...extra }))).filter((e) => e.$case === 'image').map((e) => (e.$case === 'image' ? e.value.data : null));
    const unset = await pixels({});
    assert.deepEqual(unset, await pixels({ imageGuidanceScale: 1.5 })); // the fixture bundle's defaults.image_guidance_scale
    // The second step is conditioned on the first image; s_I = s_T is the joint (two-row) guidance.
    assert.notDeepEqual(unset[1], (await pixels({ imageGuidanceScale: 7.5 }))[1]);
  });

  test('ListModels reports every bundle with sizes and defaults', async (t) => {
    const { client } = await startTestServer(t);
    const { models, defaultModel } = await client.listModels();
    assert.equal(defaultModel, 'attend_to_image');
    assert.equal(models.length, 6);
    const baseline = models.find((m) => m.name === 'baseline')!;
    assert.equal(baseline.supportsImageGuidance, false);
    assert.equal(baseline.width, 64);
    assert.equal(baseline.defaults!.numInferenceSteps, 50);
    assert.equal(baseline.executionProvider, 'cpu');
  });

  const invalid: [string, Record<string, unknown>, RegExp][] = [
    ['empty steps', { steps: [] }, /^steps: at least one step is required/],
    ['too many steps', { steps: Array(17).fill('stir') }, /^steps: at most 16 steps per request, got 17/],
    ['an empty step', { steps: ['stir', '  '] }, /^steps\[1\]: must not be empty/],
    ['over-long text', { steps: ['a'.repeat(501)] }, /^steps\[0\]: must be at most 500 characters/],
    ['an unknown model', { steps: ['stir'], model: 'sdxl' }, /^model: unknown model "sdxl"; available: /],
    ['an unknown scheduler', { steps: ['stir'], scheduler: 'unipc' }, /^scheduler: unknown scheduler "unipc"; expected one of ddpm, ddim, pndm, lms/],
    ['an unsupported size', { steps: ['stir'], width: 512 }, /^width: model attend_to_image generates 64x64; set width to 0 or 64, got 512/],
    ['too many denoising steps', { steps: ['stir'], numInferenceSteps: 5000 }, /^num_inference_steps: must be in \[1, 1000\], got 5000/],
    ['an undecodable init image', { steps: ['stir'], initImage: Buffer.from('not an image') }, /^init_image: cannot be decoded as an image/],
    ['a NaN guidance scale', { steps: ['stir'], guidanceScale: NaN }, /^guidance_scale: must be a finite number, got NaN/],
    ['an infinite image guidance scale', { steps: ['stir'], imageGuidanceScale: Infinity }, /^image_guidance_scale: must be a finite number, got Infinity/],
    ['image guidance on the baseline', { steps: ['stir'], model: 'baseline', imageGuidanceScale: 1.5 }, /^image_guidance_scale: model baseline does not support/],
    ['an out-of-range quality', { steps: ['stir'], outputQuality: 101 }, /^output_quality: must be in \[1, 100\], got 101/],
    ['an unknown preset', { steps: ['stir'], preset: 7 }, /^preset: unknown preset 7; expected SAMPLING_PRESET_UNSPECIFIED, SAMPLING_PRESET_FAST, SAMPLING_PRESET_CONSISTENT or SAMPLING_PRESET_CONSISTENT_FAST/],
    ['a frame strength of 0', { steps: ['stir'], frameStrength: 0 }, /^frame_strength: must be in \(0, 1\], got 0/],
    ['a frame strength above 1', { steps: ['stir'], frameStrength: 1.5 }, /^frame_strength: must be in \[0, 1\], got 1.5/],
    ['a frame strength that leaves no step', { steps: ['stir'], numInferenceSteps: 4, frameStrength: 0.1 }, /^frame_strength: 0.1\d* of 4 steps leaves no step to run/],
    ['a warm start with PNDM', { steps: ['stir'], scheduler: 'pndm', frameStrength: 0.5 }, /^frame_strength: scheduler pndm cannot start partway/],
    ['a first-frame weight above 1', { steps: ['stir'], firstFrameWeight: 1.2 }, /^first_frame_weight: must be in \[0, 1\], got 1.2/],
    ['an unknown conditioning frame', { steps: ['stir'], conditionOn: 7 }, /^condition_on: unknown value 7; expected CONDITIONING_FRAME_PREVIOUS, CONDITIONING_FRAME_FIRST or CONDITIONING_FRAME_FIRST_AND_PREVIOUS/],
  ];
  describe('invalid requests, on one shared server', () => {
    const cleanups: (() => Promise<void> | void)[] = [];
    let shared: Promise<TestServer>;
    before(() => void (shared = startTestServer({ after: (fn) => void cleanups.push(fn) })));
    after(async () => {
      // The hook can run before the server is up (every case filtered out): wait, then stop it.
      await shared.catch(() => undefined);
      for (const cleanup of cleanups) await cleanup();
    });

    for (const [name, request, message] of invalid) {
      test(`invalid request fails with INVALID_ARGUMENT naming the field: ${name}`, async () => {
        const { client } = await shared;
        await rejectsWith(events(client.generate(request)), status.INVALID_ARGUMENT, message);
      });
    }

    test('the FAST preset samples with DPM++ 2M at 10 steps, and fields set in the request win over it', async () => {
      const { client } = await shared;
      const summary = async (request: Record<string, unknown>) => {
        const last = (await events(client.generate({ steps: ['stir'], ...request }))).at(-1)!;
        assert.equal(last.$case, 'summary');
        return last.$case === 'summary' ? [last.value.scheduler, last.value.numInferenceSteps] : [];
      };
      assert.deepEqual(await summary({ preset: SamplingPreset.SAMPLING_PRESET_FAST }), ['dpmpp_2m', 10]);
      assert.deepEqual(await summary({ preset: SamplingPreset.SAMPLING_PRESET_FAST, scheduler: 'ddim', numInferenceSteps: 3 }), ['ddim', 3]);
      assert.deepEqual(await summary({ preset: SamplingPreset.SAMPLING_PRESET_CONSISTENT }), ['ddpm', 50]);
      assert.deepEqual(await summary({ preset: SamplingPreset.SAMPLING_PRESET_CONSISTENT_FAST }), ['dpmpp_2m', 6]);
      assert.deepEqual(await summary({ numInferenceSteps: 2 }), ['ddpm', 2], 'no preset: the model defaults');
    });

    test('100,000-character values get a bounded INVALID_ARGUMENT, and valid calls on the same channel all succeed', async () => {
      const { address } = await shared;
      // Python grpcio's default limit on received metadata (the status message travels in it).
      const client = new StepframeClient(address, undefined, { 'grpc.max_metadata_size': 8 * 1024 });
      after(() => client.close());
      const huge = 'x'.repeat(100_000);
      const bad: [Record<string, unknown>, RegExp][] = [
        [{ steps: ['stir'], model: huge }, /^model: unknown model "x{64}"… \(100000 characters\); available: /],
        [{ steps: ['stir'], scheduler: huge }, /^scheduler: unknown scheduler "x{64}"… \(100000 characters\); expected/],
        [{ steps: [huge] }, /^steps\[0\]: must be at most 500 characters, got 100000$/],
      ];
      const valid = Array.from({ length: 6 }, (_, i) => events(client.generate({ steps: ['stir'], numInferenceSteps: 2, seed: BigInt(i) })));
      const refused = bad.map(async ([request, message]) => {
        await assert.rejects(events(client.generate(request)), (error: ServiceError) => {
          assert.equal(error.code, status.INVALID_ARGUMENT, `${status[error.code]}: ${error.details.slice(0, 200)}`);
          assert.match(error.details, message);
          assert.ok(error.details.length < 400, `${error.details.length} characters`);
          return true;
        });
      });
      await Promise.all(refused);
      for (const done of await Promise.all(valid)) assert.equal(done.filter((e) => e.$case === 'image').length, 1);
    });
  });

  test('cancelling mid-stream frees capacity, so the next request completes', async (t) => {
    const { client, server } = await startTestServer(t, ['--max-active-sequences', '1', '--max-queued-sequences', '0']);
    const controller = new AbortController();
    const seen: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of client.generate({ steps: ['stir', 'stir', 'stir'], numInferenceSteps: 50, streamProgress: true }, { signal: controller.signal })) {
          seen.push(e.$case);
          if (seen.length === 3) controller.abort();
        }
      })(),
      (error: ServiceError) => error.code === status.CANCELLED,
    );
    // The server notices within one UNet call; then the single slot is free again.
    const engine = await server.ready;
    for (let i = 0; i < 100 && engine.stats().activeSequences > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(engine.stats().activeSequences, 0);
    const all = await events(client.generate({ steps: ['serve'], numInferenceSteps: 2 }));
    assert.equal(all.at(-1)!.$case, 'summary');
  });

  test('overload answers RESOURCE_EXHAUSTED', async (t) => {
    const { client } = await startTestServer(t, ['--max-active-sequences', '1', '--max-queued-sequences', '0']);
    const iterator = client.generate({ steps: ['stir', 'stir', 'stir', 'stir'], numInferenceSteps: 50, streamProgress: true })[Symbol.asyncIterator]();
    await iterator.next(); // the first sequence holds the only slot
    await rejectsWith(events(client.generate({ steps: ['stir'] })), status.RESOURCE_EXHAUSTED, /sequences are generating/);
    await iterator.return?.(undefined);
  });

  test('an exceeded deadline answers DEADLINE_EXCEEDED and the server stops the work', async (t) => {
    const { client, server } = await startTestServer(t);
    await rejectsWith(events(client.generate({ steps: Array(16).fill('stir'), numInferenceSteps: 200 }, { timeoutMs: 300 })), status.DEADLINE_EXCEEDED);
    const engine = await server.ready;
    for (let i = 0; i < 100 && engine.stats().activeSequences > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(engine.stats().activeSequences, 0);
  });

  test('a slow reader pauses its sequence instead of piling images up, and loses nothing', async (t) => {
    const { client, server } = await startTestServer(t, ['--max-steps', '40', '--max-buffered-images', '1']);
    const engine = await server.ready;
    const iterator = client.generate({ steps: Array.from({ length: 40 }, (_, i) => `stir ${i}`), numInferenceSteps: 1, outputFormat: 1 })[Symbol.asyncIterator]();
    await iterator.next(); // then stop reading: the client's and HTTP/2's buffers fill, then the server's window of 1
    for (let i = 0; i < 500 && engine.stats().pausedSequences < 1; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(engine.stats().pausedSequences, 1, 'the sequence paused for its reader');
    let rest = 0;
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) rest++;
    assert.equal(rest, 40); // 39 more images and the summary: nothing was lost
  });

  test('8 stalled readers give their slots back: a normal request still runs at once, and the stalled ones resume with identical images', async (t) => {
    const { client, server } = await startTestServer(t, ['--max-steps', '40', '--max-buffered-images', '2', '--max-active-sequences', '8', '--max-stall-s', '60']);
    const engine = await server.ready;
    const long = (seed: bigint) => ({ steps: Array.from({ length: 40 }, (_, i) => `stir ${i}`), numInferenceSteps: 1, seed });
    const timeAlone = () => timeShortRequest(client);
    await timeAlone();
    const alone = await timeAlone();
    // Each reader takes one image and stops reading: its client and HTTP/2 buffers fill, then the server's.
    const readers = Array.from({ length: 8 }, (_, i) => client.generate(long(BigInt(i)))[Symbol.asyncIterator]());
    for (const reader of readers) await reader.next();
    for (let i = 0; i < 500 && engine.stats().pausedSequences < 8; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(engine.stats().pausedSequences, 8, 'all eight readers paused');
    assert.equal(engine.stats().activeSequences, 0, 'paused sequences hold no slot');
    const crowded = await timeAlone();
    assert.ok(crowded < alone * 5 + 2000, `${crowded.toFixed(0)} ms beside 8 stalled readers, ${alone.toFixed(0)} ms alone`);
    // Reading again, every paused stream completes, and its images are those of the same request read at once.
    const reference = (await events(client.generate(long(3n)))).filter((e) => e.$case === 'image').map((e) => (e.$case === 'image' ? Buffer.from(e.value.data) : null));
    const resumed: Buffer[][] = await Promise.all(readers.map(async (reader, i) => {
      const images: Buffer[] = [];
      for (let r = await reader.next(); !r.done; r = await reader.next()) {
        const event = r.value;
        if (event.$case === 'image') images.push(Buffer.from(event.value.data));
      }
      assert.equal(images.length, 39, `reader ${i}`);
      return images;
    }));
    resumed[3].forEach((png, k) => assert.ok(png.equals(reference[k + 1]!), `image ${k + 1} of the resumed stream differs`));
  });

  test('a stream left unread past --max-stall-s is ended with RESOURCE_EXHAUSTED naming the stall', async (t) => {
    const { client, server } = await startTestServer(t, ['--max-steps', '40', '--max-buffered-images', '2', '--max-stall-s', '0.5']);
    const engine = await server.ready;
    const reader = client.generate({ steps: Array.from({ length: 40 }, (_, i) => `stir ${i}`), numInferenceSteps: 1 })[Symbol.asyncIterator]();
    await reader.next();
    for (let i = 0; i < 500 && engine.stats().pausedSequences < 1; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(engine.stats().pausedSequences, 0, 'the stalled stream was ended');
    await assert.rejects(
      (async () => {
        for (let r = await reader.next(); !r.done; r = await reader.next()) void r;
      })(),
      (error: ServiceError) => error.code === status.RESOURCE_EXHAUSTED && /read nothing for 0\.5 s/.test(error.details),
    );
  });

  test('8 stalled readers that asked for progress are paused, give their slots back and are ended after --max-stall-s', async (t) => {
    const { client, server } = await startTestServer(t, ['--max-steps', '16', '--max-buffered-images', '2', '--max-active-sequences', '8', '--max-stall-s', '1.5']);
    const engine = await server.ready;
    const timeAlone = () => timeShortRequest(client);
    await timeAlone();
    const alone = await timeAlone();
    // Each reader asks for progress on 16 steps, reads one event and stops reading.
    const readers = Array.from({ length: 8 }, (_, i) =>
      client.generate({ steps: Array.from({ length: 16 }, (_, k) => `stir ${k}`), numInferenceSteps: 4, seed: BigInt(i), streamProgress: true })[Symbol.asyncIterator]());
    for (const reader of readers) await reader.next();
    for (let i = 0; i < 200 && engine.stats().activeSequences > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(engine.stats().activeSequences, 0, 'stalled progress readers hold no slot');
    const crowded = await timeAlone();
    assert.ok(crowded < alone * 5 + 1000, `${crowded.toFixed(0)} ms beside 8 stalled progress readers, ${alone.toFixed(0)} ms alone`);
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(engine.stats().pausedSequences, 0, 'every stalled stream was ended');
    for (const reader of readers) {
      await assert.rejects(
        (async () => {
          for (let r = await reader.next(); !r.done; r = await reader.next()) void r;
        })(),
        (error: ServiceError) => error.code === status.RESOURCE_EXHAUSTED && /read nothing for 1\.5 s/.test(error.details),
      );
    }
  });

  test('a deadline 40 days away (past Node\'s 2^31-1 ms timer limit) does not end the call', async (t) => {
    const { client } = await startTestServer(t);
    const all = await events(client.generate({ steps: ['stir'], numInferenceSteps: 2 }, { timeoutMs: 40 * 24 * 3600 * 1000 }));
    assert.equal(all.filter((e) => e.$case === 'image').length, 1);
  });

  test('reflection lists the service and describes it (what grpcurl list and describe use)', async (t) => {
    const { address } = await startTestServer(t);
    const { listServices, fileContainingSymbol } = await import('../helpers/reflectionClient.js');
    const services = await listServices(address);
    assert.ok(services.includes('stepframe.v1.SequenceService'), services.join(', '));
    assert.ok(services.includes('grpc.health.v1.Health'), services.join(', '));
    const files = await fileContainingSymbol(address, 'stepframe.v1.SequenceService');
    const descriptor = Buffer.concat(files).toString('latin1');
    for (const name of ['stepframe.v1', 'SequenceService', 'GenerateSequence', 'GenerateSequenceRequest', 'StepImage']) assert.ok(descriptor.includes(name), name);
  });

  test('health is NOT_SERVING while loading, SERVING when loaded, NOT_SERVING while draining', async (t) => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { server, address } = await startTestServer(t, [], {
      waitReady: false,
      loadEngine: async (options) => {
        await gate;
        return Engine.create(options);
      },
    });
    assert.equal(await checkHealth(address), 'NOT_SERVING');
    assert.equal(await checkHealth(address, 'stepframe.v1.SequenceService'), 'NOT_SERVING');
    release();
    await server.ready;
    assert.equal(await checkHealth(address), 'SERVING');
    void server.lifecycle.drain(1000);
    assert.equal(await checkHealth(address), 'NOT_SERVING');
  });

  test('shutdown while the bundles load: health never turns SERVING, the engine that finishes loading is disposed', async (t) => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let disposed = false;
    const { server, address, logs } = await startTestServer(t, [], {
      waitReady: false,
      loadEngine: async (options) => {
        await gate;
        const engine = await Engine.create(options);
        const dispose = engine.dispose.bind(engine);
        engine.dispose = async () => {
          disposed = true;
          await dispose();
        };
        return engine;
      },
    });
    const rejected = assert.rejects(server.ready, ShutdownDuringLoadError);
    const stopping = server.shutdown();
    release();
    await rejected;
    await stopping;
    assert.equal(disposed, true, 'the executors loaded after SIGTERM were disposed');
    assert.equal(server.lifecycle.serving, false);
    assert.ok(!logs.some((line) => line.includes('"serving"')), 'no "serving" line after shutdown began');
    await assert.rejects(checkHealth(address, undefined, undefined, 500));
  });

  test('a load that fails after shutdown began is not a startup failure (ready rejects with ShutdownDuringLoadError)', async (t) => {
    let fail!: () => void;
    const gate = new Promise<void>((_, reject) => (fail = () => reject(new Error('bundle broken'))));
    const { server } = await startTestServer(t, [], { waitReady: false, loadEngine: async () => gate as Promise<never> });
    const rejected = assert.rejects(server.ready, (error: unknown) => error instanceof ShutdownDuringLoadError && (error.cause as Error).message === 'bundle broken');
    const stopping = server.shutdown();
    fail();
    await rejected;
    assert.deepEqual(await stopping, { drained: true });
  });
});
