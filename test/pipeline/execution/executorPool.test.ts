import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { type BatchReport, BatchedModel } from '../../../src/pipeline/batching/batchedModel.js';
import type { Feeds } from '../../../src/pipeline/batching/feeds.js';
import { SessionPool } from '../../../src/pipeline/bundle/sessionPool.js';
import { BundleError, CancelledError, ExecutorLostError } from '../../../src/pipeline/errors.js';
import { ModelLoadError } from '../../../src/pipeline/execution/modelLoadError.js';
import type { Executor } from '../../../src/pipeline/execution/executor.js';
import { ExecutorPool } from '../../../src/pipeline/execution/executorPool.js';
import type { LoadedModelInfo } from '../../../src/pipeline/execution/protocol.js';
import { WorkerExecutor } from '../../../src/pipeline/execution/workerExecutor.js';
import { TEST_SESSION_SETTINGS } from '../../helpers/engineSettings.js';
import { FIXTURE_BUNDLES } from '../../helpers/paths.js';

const TEXT_ENCODER = join(FIXTURE_BUNDLES, 'shared', 'text_encoder', 'model.onnx');

function tokenFeeds(seed: number): Feeds {
  // Any ids below the fixture vocabulary's size; each seed gives a different row.
  const ids = BigInt64Array.from({ length: 77 }, (_, i) => BigInt((seed * 131 + i * 17) % 400));
  return { input_ids: { type: 'int64', data: ids, dims: [1, 77] } };
}

async function textEncoderPool(executors: number) {
  const pool = new SessionPool({ ...TEST_SESSION_SETTINGS, executors });
  const model = await pool.load(TEXT_ENCODER, 'text_encoder');
  return { pool, model };
}

describe('executor pool', () => {
  test('batches are spread over the executors and each request gets its own rows back, in order', async (t) => {
    const { pool, model } = await textEncoderPool(2);
    t.after(() => pool.dispose());
    assert.equal(pool.executors.size, 2);
    const alone: { data: Float32Array }[] = [];
    for (let i = 0; i < 12; i++) alone.push((await model.run(tokenFeeds(i))).last_hidden_state);
    const reports: BatchReport[] = [];
    const batched = new BatchedModel(model, ['last_hidden_state'], { maxBatch: 4, maxQueueDelayMs: 50 }, (r) => reports.push(r));
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => batched.run({ feeds: tokenFeeds(i), rows: 1 })));
    results.forEach((out, i) => assert.deepEqual(Array.from(out.last_hidden_state.data), Array.from(alone[i].data), `request ${i}`));
    assert.equal(reports.reduce((sum, r) => sum + r.rows, 0), 12);
    assert.ok(reports.every((r) => r.rows <= 4), JSON.stringify(reports.map((r) => r.rows)));
    assert.deepEqual(new Set(reports.map((r) => r.executor)), new Set([0, 1]));
  });

  test('a request cancelled while it waits for an executor never occupies one', async (t) => {
    const { pool, model } = await textEncoderPool(1);
    t.after(() => pool.dispose());
    const reports: BatchReport[] = [];
    const batched = new BatchedModel(model, ['last_hidden_state'], { maxBatch: 1, maxQueueDelayMs: 0 }, (r) => reports.push(r));
    const controller = new AbortController();
    const first = batched.run({ feeds: tokenFeeds(1), rows: 1, trace: 'first' });
    const cancelled = batched.run({ feeds: tokenFeeds(2), rows: 1, trace: 'cancelled', signal: controller.signal });
    const last = batched.run({ feeds: tokenFeeds(3), rows: 1, trace: 'last' });
    controller.abort();
    await assert.rejects(cancelled, CancelledError);
    await Promise.all([first, last]);
    assert.deepEqual(reports.map((r) => r.traces), [['first'], ['last']]);
    assert.equal(pool.executors.stats().busy, 0);
  });

  test('a worker that exits mid-call fails only that call and is replaced with its models', async (t) => {
    const { pool, model } = await textEncoderPool(2);
    t.after(() => pool.dispose());
    const health: boolean[] = [];
    pool.executors.onHealthChange((healthy) => health.push(healthy));
    const recovered = new Promise<void>((resolve) => pool.executors.onHealthChange((healthy) => healthy && resolve()));
    await pool.executors.exitOnNextRun(0);
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => model.run(tokenFeeds(i))));
    const failed = outcomes.filter((o) => o.status === 'rejected');
    assert.equal(failed.length, 1, 'exactly the call on the exiting executor fails');
    const reason = (failed[0] as PromiseRejectedResult).reason;
    assert.ok(reason instanceof ExecutorLostError, String(reason));
    assert.match(reason.message, /executor 0 exited with code 70.*retry/);
    await recovered;
    assert.deepEqual(health, [false, true]);
    assert.deepEqual(pool.executors.stats(), { executors: 2, busy: 0, restarts: 1 });
    // The replacement holds the model: both executors serve it again.
    const again = await Promise.all(Array.from({ length: 4 }, (_, i) => model.run(tokenFeeds(i))));
    assert.equal(again.length, 4);
  });

  test('shutdown ends every worker, and later leases fail instead of hanging', async () => {
    const executor = new WorkerExecutor(0, undefined);
    await executor.load(1, TEXT_ENCODER, [{ name: 'cpu' }], { intraOpNumThreads: 1, interOpNumThreads: 1, weightsInPlace: false });
    await executor.dispose();
    assert.match(await executor.lost, /shut down/);

    const { pool } = await textEncoderPool(2);
    await pool.dispose();
    assert.equal(pool.executors.stats().executors, 0);
    await assert.rejects(pool.executors.lease(), /shut down/);
  });

  test('lease(signal) stops waiting when the signal fires, and never holds an executor afterwards', async () => {
    const pool = new ExecutorPool({ ...QUIET, executors: 1 }, { spawn: (index) => new FakeExecutor(index, 'cpu') });
    await pool.load('model.onnx');
    const held = await pool.lease();
    const controller = new AbortController();
    const waiting = pool.lease(controller.signal);
    controller.abort(new CancelledError('gone'));
    await assert.rejects(waiting, CancelledError);
    held.release();
    const next = await pool.lease();
    assert.equal(next.executor.index, 0, 'the executor went to the next waiter, not to the cancelled one');
    next.release();
    await pool.dispose();
  });

  test('a replacement that comes up on CPU among CUDA executors is refused; after the last attempt, with no executor left, leases fail instead of hanging', async (t) => {
    const warnings: string[] = [];
    let spawned = 0;
    // The first executor gets CUDA; every replacement finds the device gone and falls back to CPU.
    const pool = new ExecutorPool({ ...QUIET, executionProviders: ['cuda', 'cpu'], executors: 1, warn: (message, fields) => warnings.push(`${message} ${JSON.stringify(fields)}`) },
      { spawn: (index) => new FakeExecutor(index, spawned++ === 0 ? 'cuda' : 'cpu'), retryDelayMs: 1 });
    await pool.load('unet.onnx');
    // The pool's retry timers are unref'd (they must not keep a stopping process alive); this keeps the test's loop running.
    const keepAlive = setInterval(() => undefined, 20);
    t.after(() => clearInterval(keepAlive));
    const first = await pool.lease();
    first.release();
    (first.executor as FakeExecutor).lose('segfault');
    await new Promise((r) => setTimeout(r, 0));
    const waiting = pool.lease();
    assert.equal(pool.healthy, false);
    await assert.rejects(waiting, /every executor was lost and none could be replaced after 6 attempts: executor 0 came up on cpu, not cuda/);
    await assert.rejects(pool.lease(), /every executor was lost/);
    assert.equal(pool.healthy, false, 'health stays NOT_SERVING');
    assert.equal(spawned, 7, 'the original and six replacement attempts');
    assert.ok(warnings.some((w) => w.includes('came up on cpu, not cuda')), warnings.join('\n'));
    await pool.dispose();
  });

  test('an executor replaced while bundles unload and load ends up holding exactly the models loaded now', async (t) => {
    const spawned: FakeExecutor[] = [];
    // The replacement (the third executor made) loads slowly, so the pool changes while it comes up.
    const pool = new ExecutorPool({ ...QUIET, executors: 2 }, { spawn: (index) => spawned[spawned.push(new FakeExecutor(index, 'cpu', { loadMs: spawned.length >= 2 ? 30 : 0 })) - 1], retryDelayMs: 1 });
    const a = await pool.load('a.onnx');
    const b = await pool.load('b.onnx');
    const keepAlive = setInterval(() => undefined, 20);
    t.after(() => clearInterval(keepAlive));
    spawned[1].lose('segfault');
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(pool.healthy, false);
    await pool.unload(a.id);
    const c = await pool.load('c.onnx');
    for (let i = 0; i < 200 && !pool.healthy; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(pool.healthy, true);
    assert.deepEqual([...spawned[0].held].sort(), [b.id, c.id]);
    assert.deepEqual([...spawned[2].held].sort(), [b.id, c.id], 'the replacement dropped the unloaded model and took the new one');
    await pool.dispose();
  });

  test('a model loaded while the only executor is being replaced waits for the replacement instead of adding an executor', async (t) => {
    const spawned: FakeExecutor[] = [];
    const pool = new ExecutorPool({ ...QUIET, executors: 1 }, { spawn: (index) => spawned[spawned.push(new FakeExecutor(index, 'cpu', { loadMs: spawned.length >= 1 ? 30 : 0 })) - 1], retryDelayMs: 1 });
    const a = await pool.load('a.onnx');
    const keepAlive = setInterval(() => undefined, 20);
    t.after(() => clearInterval(keepAlive));
    spawned[0].lose('segfault');
    await new Promise((r) => setTimeout(r, 5));
    const b = await pool.load('b.onnx');
    assert.equal(pool.size, 1, 'still one executor, as configured');
    assert.equal(spawned.length, 2, 'the original and its replacement, nothing more');
    assert.deepEqual([...spawned[1].held].sort(), [a.id, b.id]);
    await pool.dispose();
  });

  test('a replacement that fails while other executors serve is given up after its attempts, and health returns', async (t) => {
    let spawned = 0;
    const pool = new ExecutorPool({ ...QUIET, executors: 2 }, { spawn: (index) => new FakeExecutor(index, 'cpu', { failLoad: spawned++ >= 2 }), retryDelayMs: 1 });
    await pool.load('unet.onnx');
    const keepAlive = setInterval(() => undefined, 20);
    t.after(() => clearInterval(keepAlive));
    const lease = await pool.lease();
    lease.release();
    (lease.executor as FakeExecutor).lose('segfault');
    for (let i = 0; i < 200 && !pool.healthy; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(pool.healthy, true);
    assert.equal(pool.size, 1);
    const next = await pool.lease();
    next.release();
    await pool.dispose();
  });
});


describe('errors across the worker boundary', () => {
  for (const mode of ['workers', 'main-thread'] as const) {
    test(`a file ONNX Runtime cannot load is a BundleError naming the file once, its cause a ModelLoadError (${mode})`, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'stepframe-broken-'));
      const file = join(dir, 'model.onnx');
      writeFileSync(file, 'not an onnx graph');
      const pool = new SessionPool({ ...TEST_SESSION_SETTINGS, mode, executors: 1 });
      t.after(async () => {
        await pool.dispose();
        rmSync(dir, { recursive: true, force: true });
      });
      await assert.rejects(pool.load(file, 'unet'), (error: unknown) => {
        assert.ok(error instanceof BundleError, String(error));
        assert.ok(error.cause instanceof ModelLoadError, `cause: ${String(error.cause)}`);
        assert.equal(error.message.split(file).length - 1, 1, error.message);
        assert.match(error.message, /ONNX Runtime cannot load this model/);
        return true;
      });
    });
  }
});

const QUIET = { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, mode: 'workers' as const, executors: 1, cudaDeviceIds: [], log: () => undefined };

/** An executor whose provider, load failures, load time and loss the test decides; it records the models it holds. */
class FakeExecutor implements Executor {
  readonly deviceId = undefined;
  readonly lost: Promise<string>;
  readonly held = new Set<number>();
  private resolveLost!: (reason: string) => void;

  constructor(
    readonly index: number,
    private readonly provider = 'cpu',
    private readonly options: { failLoad?: boolean; loadMs?: number } = {},
  ) {
    this.lost = new Promise((r) => (this.resolveLost = r));
  }

  async load(modelId: number): Promise<LoadedModelInfo> {
    if (this.options.failLoad) throw new Error('cannot load');
    if (this.options.loadMs) await new Promise((r) => setTimeout(r, this.options.loadMs));
    this.held.add(modelId);
    return { provider: this.provider, inputs: [], outputs: [], unavailable: [] };
  }

  async release(modelId: number): Promise<void> {
    this.held.delete(modelId);
  }

  async run() {
    return {};
  }

  lose(reason: string): void {
    this.resolveLost(reason);
  }

  async exitOnNextRun(): Promise<void> {}

  async dispose(): Promise<void> {}
}
