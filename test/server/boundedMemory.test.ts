import assert from 'node:assert/strict';
import { test } from 'node:test';

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

const rss = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss / 2 ** 20;
};

test('thousands of requests with distinct values in every free field leave RSS flat (a bound, not a speed)', async (t) => {
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
  await run(0, 300);
  const before = rss();
  await run(300, 3000);
  const after = rss();
  // A cache keyed by eta alone held a scheduler with its noise tables per value: about 25 KB each,
  // 75 MB for these 3000 requests. Allocator noise on a 500 MB process stays well under the bound.
  assert.ok(after - before < 40, `RSS ${before.toFixed(0)} -> ${after.toFixed(0)} MiB over 3000 requests`);
});
