import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

import { startTestServer } from '../helpers/testServer.js';

/** Distinct values in every free field a well-formed request has: nothing keyed by them may grow without bound. */
function distinctRequest(i: number) {
  const word = (k: number) => `w${(i * 7919 + k * 104729).toString(36)}`;
  return {
    steps: [`${word(1)} the ${word(2)}`],
    seed: BigInt(i) * 2654435761n,
    numInferenceSteps: 1 + (i % 3),
    guidanceScale: 1.5 + (i % 997) / 100,
    imageGuidanceScale: 1 + (i % 991) / 200,
    eta: (i % 1009) / 1009,
    negativePrompt: `${word(3)} ${word(4)}`,
    outputQuality: 1 + (i % 100),
    scheduler: (['ddpm', 'ddim', 'euler', 'dpmpp_2m'] as const)[i % 4],
  };
}

// A full collection before each reading, so garbage not yet collected does not read as growth.
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const rss = () => {
  gc();
  return process.memoryUsage().rss / 2 ** 20;
};

test('5000 requests with distinct values in every free field leave RSS flat (a bound, not a speed)', async (t) => {
  const { client } = await startTestServer(t, ['--max-active-sequences', '8', '--max-queued-sequences', '64']);
  const run = async (from: number, count: number) => {
    let next = from;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < from + count) {
        const request = distinctRequest(next++);
        for await (const _ of client.generate(request)) void _;
      }
    }));
  };
  // Warm-up: the allocator and the JIT settle over the first thousand or so requests.
  await run(0, 1000);
  const first = rss();
  await run(1000, 2000);
  const second = rss();
  await run(3000, 2000);
  const third = rss();
  // A cache keyed by a per-request value (the scheduler cache keyed by eta did this) holds about
  // 25 KB per request: 50 MiB over each 2000, in both windows alike. Bounded state levels off.
  const readings = `RSS ${first.toFixed(0)} -> ${second.toFixed(0)} -> ${third.toFixed(0)} MiB after 1000, 3000 and 5000 requests`;
  t.diagnostic(readings);
  assert.ok(third - second < 20, readings);
});
