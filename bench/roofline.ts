/**
 * The machine's UNet roofline at the engine's batch sizes: the best rows/s that bare sessions reach,
 * as one session with N intra-op threads on the main thread and as N one-thread sessions in N worker
 * executors. The engine's served rows/s is reported as a fraction of the better of the two.
 */
import * as ort from 'onnxruntime-node';

import type { Feeds } from '../src/pipeline/batching/feeds.js';
import { concatFeeds } from '../src/pipeline/batching/feeds.js';
import { ExecutorPool } from '../src/pipeline/execution/executorPool.js';

export interface RooflineRow {
  layout: string;
  batch: number;
  rowsPerSecond: number;
}

/** Per-row shapes of the UNet's inputs (without the batch axis). */
export interface UnetShapes {
  sample: number[];
  conditioning: number[];
}

function unetFeeds(rows: number, shapes: UnetShapes): Feeds {
  const size = (dims: number[]) => rows * dims.reduce((a, b) => a * b, 1);
  return {
    sample: { type: 'float32', data: new Float32Array(size(shapes.sample)).fill(0.1), dims: [rows, ...shapes.sample] },
    timestep: { type: 'int64', data: new BigInt64Array(rows).fill(500n), dims: [rows] },
    encoder_hidden_states: { type: 'float32', data: new Float32Array(size(shapes.conditioning)).fill(0.01), dims: [rows, ...shapes.conditioning] },
  };
}

async function oneSession(file: string, threads: number, batch: number, shapes: UnetShapes, calls: number): Promise<RooflineRow> {
  const session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1 });
  const feeds = concatFeeds([unetFeeds(batch, shapes)], new Set());
  const tensors = Object.fromEntries(Object.entries(feeds).map(([name, f]) => [name, new ort.Tensor(f.type, f.data, f.dims as number[])]));
  for (let i = 0; i < 3; i++) await session.run(tensors);
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await session.run(tensors);
  const seconds = (performance.now() - t0) / 1000;
  await session.release();
  return { layout: `1 session × ${threads} threads`, batch, rowsPerSecond: (batch * calls) / seconds };
}

async function workerSessions(file: string, workers: number, batch: number, shapes: UnetShapes, calls: number): Promise<RooflineRow> {
  const pool = new ExecutorPool({ executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, mode: 'workers', executors: workers, cudaDeviceIds: [], log: () => undefined });
  try {
    const { id } = await pool.load(file);
    const call = () => pool.run(id, concatFeeds([unetFeeds(batch, shapes)], new Set()), ['out_sample']);
    await Promise.all(Array.from({ length: workers * 2 }, call));
    const t0 = performance.now();
    await Promise.all(Array.from({ length: workers }, async () => {
      for (let i = 0; i < Math.ceil(calls / workers); i++) await call();
    }));
    const seconds = (performance.now() - t0) / 1000;
    return { layout: `${workers} workers × 1 thread`, batch, rowsPerSecond: (batch * workers * Math.ceil(calls / workers)) / seconds };
  } finally {
    await pool.dispose();
  }
}

/** Every layout at every batch size; the best row is the roofline. */
export async function measureRoofline(file: string, cores: number, batches: readonly number[], shapes: UnetShapes, calls = 60): Promise<{ rows: RooflineRow[]; best: RooflineRow }> {
  const rows: RooflineRow[] = [];
  for (const batch of batches) {
    rows.push(await oneSession(file, cores, batch, shapes, calls));
    rows.push(await workerSessions(file, cores, batch, shapes, calls));
  }
  const best = rows.reduce((a, b) => (b.rowsPerSecond > a.rowsPerSecond ? b : a));
  return { rows, best };
}
