import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { StepframeClient } from '../../clients/typescript/stepframeClient.js';
import { ModelState } from '../../clients/typescript/generated/stepframe/v1/sequence_service.js';
import { bundleWeightFiles, findBundleDirs } from '../../src/pipeline/bundle/loadBundle.js';
import { FIXTURE_BUNDLES } from '../helpers/paths.js';
import { createTestEngine } from '../helpers/testEngine.js';
import { startTestServer } from '../helpers/testServer.js';

const EXECUTORS = 2;

/**
 * A budget that holds the shared encoders and VAE and any two bundles' own models, and never three,
 * computed from the fixture's files as the server weighs them (inline weights: one copy per executor).
 */
async function budgetForTwo(): Promise<number> {
  const bundles = await Promise.all((await findBundleDirs(FIXTURE_BUNDLES)).map(bundleWeightFiles));
  const counts = new Map<string, number>();
  for (const b of bundles) for (const f of b.files) counts.set(f.key, (counts.get(f.key) ?? 0) + 1);
  const sizes = new Map(bundles.flatMap((b) => b.files.map((f) => [f.key, f.bytes] as const)));
  const shared = [...counts].filter(([, n]) => n > 1).reduce((sum, [key]) => sum + sizes.get(key)!, 0);
  const own = bundles.map((b) => b.files.filter((f) => counts.get(f.key) === 1).reduce((sum, f) => sum + f.bytes, 0)).sort((a, b) => a - b);
  assert.equal(own.length, 6);
  const two = EXECUTORS * (shared + own[4] + own[5]);
  const three = EXECUTORS * (shared + own[0] + own[1] + own[2]);
  assert.ok(two < three, 'the fixture must let two bundles fit where three cannot');
  return two;
}

async function generateOne(client: StepframeClient, model: string, seed: bigint): Promise<number> {
  let images = 0;
  for await (const event of client.generate({ model, steps: ['chop the carrots', 'stir the pot'], numInferenceSteps: 2, seed })) if (event.$case === 'image') images++;
  return images;
}

/** Polls ListModels until stopped; returns the most bundles ever reported loaded at once. */
function watchLoaded(client: StepframeClient): { stop: () => Promise<number> } {
  let most = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const { models } = await client.listModels();
      most = Math.max(most, models.filter((m) => m.state === ModelState.MODEL_STATE_LOADED).length);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return most;
    },
  };
}

describe('bundles within a memory budget', () => {
  test('a budget that fits 2 of the 6 bundles: every request, one after another and all at once, succeeds, with never more than 2 loaded', async (t) => {
    const budget = await budgetForTwo();
    const { client, logs } = await startTestServer(t, ['--memory-budget', String(budget), '--max-active-sequences', '8']);
    const listed = (await client.listModels()).models;
    assert.equal(listed.length, 6);
    const states = Object.fromEntries(listed.map((m) => [m.name, m.state]));
    // The default loads last at start, so it is among the two left loaded.
    assert.equal(states.attend_to_image, ModelState.MODEL_STATE_LOADED);
    assert.equal(listed.filter((m) => m.state === ModelState.MODEL_STATE_LOADED).length, 2);
    assert.equal(listed.filter((m) => m.state === ModelState.MODEL_STATE_NOT_LOADED).length, 4);

    const watch = watchLoaded(client);
    const names = listed.map((m) => m.name);
    for (const [i, name] of names.entries()) assert.equal(await generateOne(client, name, BigInt(i)), 2, name);
    const all = await Promise.all([...names, ...names].map((name, i) => generateOne(client, name, BigInt(100 + i))));
    assert.deepEqual(all, Array(12).fill(2));
    assert.ok((await watch.stop()) <= 2, 'ListModels never shows more than 2 loaded');

    const unloads = logs.filter((l) => l.includes('"bundle unloaded"'));
    const loads = logs.filter((l) => l.includes('"bundle loaded"'));
    assert.ok(unloads.length >= 4, `bundles were unloaded to make room (${unloads.length})`);
    assert.equal(loads.length - unloads.length, 2, 'two stay loaded');
  });

  test('--max-loaded-bundles 1: alternating requests reload each bundle in turn; results equal an unlimited server\'s', async (t) => {
    const limited = await startTestServer(t, ['--max-loaded-bundles', '1']);
    const unlimited = await startTestServer(t);
    const picture = async (client: StepframeClient, model: string) => {
      const out: Buffer[] = [];
      for await (const event of client.generate({ model, steps: ['chop the carrots'], numInferenceSteps: 2, seed: 5n })) if (event.$case === 'image') out.push(event.value.data);
      return Buffer.concat(out);
    };
    for (const model of ['concatenation', 'baseline', 'concatenation']) {
      assert.ok((await picture(limited.client, model)).equals(await picture(unlimited.client, model)), `${model}: a reloaded bundle draws the same image`);
      const loaded = (await limited.client.listModels()).models.filter((m) => m.state === ModelState.MODEL_STATE_LOADED).map((m) => m.name);
      assert.deepEqual(loaded, [model]);
    }
  });

  test('a budget smaller than one bundle fails at start, naming the flag', async () => {
    await assert.rejects(
      createTestEngine({ residency: { budgetBytes: 1000, maxLoaded: null } }),
      /needs .* of weights as its executors hold them, more than --memory-budget/,
    );
  });
});
