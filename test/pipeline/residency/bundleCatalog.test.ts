import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { WeightFile } from '../../../src/pipeline/bundle/loadBundle.js';
import { type BundleEvent, BundleCatalog } from '../../../src/pipeline/residency/bundleCatalog.js';

/** A catalog over fake runtimes (the bundle's name) whose loads take `loadMs`; it records what is loaded at every moment. */
function fakeCatalog(limits: { budgetBytes: number | null; maxLoaded: number | null }, loadMs = 5) {
  const events: BundleEvent[] = [];
  const loaded = new Set<string>();
  let mostLoaded = 0;
  const catalog = new BundleCatalog<string>(
    {
      load: async (dir) => {
        await new Promise((r) => setTimeout(r, loadMs));
        loaded.add(dir);
        mostLoaded = Math.max(mostLoaded, loaded.size);
        return dir;
      },
      unload: async (runtime) => void loaded.delete(runtime),
      copies: () => 2,
      onEvent: (e) => events.push(e),
    },
    limits,
  );
  const files = (name: string): WeightFile[] => [
    { component: 'text_encoder', key: 'shared', bytes: 10, externalData: false },
    { component: 'unet', key: name, bytes: 100, externalData: false },
  ];
  return { catalog, events, loaded, files, mostLoaded: () => mostLoaded };
}

describe('BundleCatalog', () => {
  test('without limits every bundle loads at start and none is ever unloaded', async () => {
    const { catalog, events, files } = fakeCatalog({ budgetBytes: null, maxLoaded: null });
    for (const name of ['a', 'b', 'c']) catalog.add(name, name, files(name));
    for (const name of ['a', 'b', 'c']) await catalog.preload(name);
    assert.deepEqual(catalog.names().map((n) => catalog.state(n)), ['loaded', 'loaded', 'loaded']);
    assert.equal(events.filter((e) => e.kind === 'unload').length, 0);
    // Two executors each hold the shared encoder once and each UNet.
    assert.equal(catalog.loadedBytes(), 2 * (10 + 300));
  });

  test('a budget for two: the third loads on request in place of the least recently used idle one', async () => {
    const { catalog, events, files, loaded } = fakeCatalog({ budgetBytes: 2 * 210, maxLoaded: null });
    for (const name of ['a', 'b', 'c']) catalog.add(name, name, files(name));
    for (const name of ['a', 'b', 'c']) await catalog.preload(name);
    assert.deepEqual([...loaded].sort(), ['b', 'c']);
    assert.equal(catalog.state('a'), 'not_loaded');
    const useB = await catalog.acquire('b');
    useB.release();
    const hold = await catalog.acquire('a');
    assert.equal(hold.runtime, 'a');
    assert.deepEqual([...loaded].sort(), ['a', 'b'], 'c was the least recently used');
    hold.release();
    assert.deepEqual(events.filter((e) => e.kind === 'unload').map((e) => e.model), ['a', 'c']);
    assert.ok(events.filter((e) => e.kind === 'load').every((e) => typeof e.seconds === 'number' && e.seconds >= 0));
  });

  test('a bundle in use is never unloaded: the load waits until a sequence lets go, and the waiter counts as queued', async () => {
    const { catalog, files, loaded } = fakeCatalog({ budgetBytes: null, maxLoaded: 1 });
    for (const name of ['a', 'b']) catalog.add(name, name, files(name));
    for (const name of ['a', 'b']) await catalog.preload(name);
    const holdB = await catalog.acquire('b');
    let gotA = false;
    const waiting = catalog.acquire('a').then((h) => ((gotA = true), h));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(gotA, false);
    assert.equal(catalog.state('a'), 'loading');
    assert.equal(catalog.waitingForLoad, 1);
    assert.deepEqual([...loaded], ['b']);
    holdB.release();
    const holdA = await waiting;
    assert.deepEqual([...loaded], ['a']);
    assert.equal(catalog.waitingForLoad, 0);
    holdA.release();
  });

  test('many concurrent requests over more bundles than fit all succeed, and the limit holds throughout', async () => {
    const { catalog, files, mostLoaded } = fakeCatalog({ budgetBytes: 2 * 210, maxLoaded: null }, 3);
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const name of names) catalog.add(name, name, files(name));
    for (const name of names) await catalog.preload(name);
    const work = names.flatMap((name) =>
      [0, 1, 2].map(async () => {
        const hold = await catalog.acquire(name);
        assert.equal(hold.runtime, name);
        await new Promise((r) => setTimeout(r, 2));
        hold.release();
      }),
    );
    await Promise.all(work);
    assert.ok(mostLoaded() <= 2, `at most 2 loaded at once, saw ${mostLoaded()}`);
  });

  test('a waiter whose deadline passes stops waiting; with nobody left waiting the load is abandoned', async () => {
    const { catalog, files, loaded } = fakeCatalog({ budgetBytes: null, maxLoaded: 1 });
    for (const name of ['a', 'b']) catalog.add(name, name, files(name));
    for (const name of ['a', 'b']) await catalog.preload(name);
    const holdB = await catalog.acquire('b');
    const controller = new AbortController();
    const waiting = catalog.acquire('a', controller.signal);
    controller.abort();
    await assert.rejects(waiting, /cancel/i);
    holdB.release();
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual([...loaded], ['b'], 'a was not loaded for nobody');
    assert.equal(catalog.state('a'), 'not_loaded');
    // A later request still loads it.
    const holdA = await catalog.acquire('a');
    assert.equal(holdA.runtime, 'a');
    holdA.release();
  });

  test('a bundle larger than the budget alone is refused, naming the flag', async () => {
    const { catalog, files } = fakeCatalog({ budgetBytes: 100, maxLoaded: null });
    catalog.add('a', 'a', files('a'));
    await assert.rejects(catalog.preload('a'), /bundle a needs .* more than --memory-budget/);
  });
});
