import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import type { Feeds } from '../../../src/pipeline/batching/feeds.js';
import { SessionPool } from '../../../src/pipeline/bundle/sessionPool.js';
import { TEST_SESSION_SETTINGS } from '../../helpers/engineSettings.js';
import { FIXTURE_BUNDLES } from '../../helpers/paths.js';

const UNET = join(FIXTURE_BUNDLES, 'attend_to_image', 'unet', 'model.onnx');

/** One UNet call large enough to take tens of milliseconds, even on the tiny fixture. */
function bigUnetFeeds(rows: number): Feeds {
  return {
    sample: { type: 'float32', data: new Float32Array(rows * 4 * 16 * 16).fill(0.1), dims: [rows, 4, 16, 16] },
    timestep: { type: 'int64', data: new BigInt64Array(rows).fill(500n), dims: [rows] },
    encoder_hidden_states: { type: 'float32', data: new Float32Array(rows * 77 * 32).fill(0.01), dims: [rows, 77, 32] },
  };
}

/** Runs one call while a 1 ms interval ticks; returns the call's duration and the longest gap between ticks. */
async function callWithTicker(mode: 'workers' | 'main-thread') {
  const pool = new SessionPool({ ...TEST_SESSION_SETTINGS, mode, executors: 1 });
  try {
    const unet = await pool.load(UNET, 'unet');
    await unet.run(bigUnetFeeds(8));
    let last = performance.now();
    let longestGap = 0;
    let ticks = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      ticks++;
    }, 1);
    const t0 = performance.now();
    await unet.run(bigUnetFeeds(128));
    const callMs = performance.now() - t0;
    clearInterval(ticker);
    longestGap = Math.max(longestGap, performance.now() - last);
    return { callMs, longestGap, ticks };
  } finally {
    await pool.dispose();
  }
}

test('the event loop keeps ticking during a long model call in an executor (and does not on the main thread)', async () => {
  const workers = await callWithTicker('workers');
  assert.ok(workers.callMs > 20, `the call took ${workers.callMs.toFixed(1)} ms: too short to tell`);
  assert.ok(workers.ticks >= workers.callMs / 10, `${workers.ticks} ticks in ${workers.callMs.toFixed(0)} ms`);
  assert.ok(workers.longestGap < workers.callMs / 2, `longest gap ${workers.longestGap.toFixed(1)} ms of a ${workers.callMs.toFixed(1)} ms call`);
  // The same call on the main thread blocks the loop for all of it: what the check above would catch.
  const mainThread = await callWithTicker('main-thread');
  assert.ok(mainThread.longestGap >= mainThread.callMs * 0.8, `main thread: gap ${mainThread.longestGap.toFixed(1)} ms, call ${mainThread.callMs.toFixed(1)} ms`);
});
