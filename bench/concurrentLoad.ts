/**
 * Concurrent load through one engine: `clients` closed-loop clients, each running `perClient`
 * two-step sequences back to back. Reports images/s, time to first image, the UNet rows the engine
 * served per second, the share of executor time spent outside the UNet, and the main thread's
 * event-loop delay while it ran.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

import type { BatchReport } from '../src/pipeline/batching/batchedModel.js';
import type { Engine } from '../src/pipeline/engine.js';
import type { SequenceRequest } from '../src/pipeline/sequenceRequest.js';

export interface LoadResult {
  images: number;
  seconds: number;
  imagesPerSecond: number;
  firstImageP50Ms: number;
  firstImageP95Ms: number;
  unetRowsPerSecond: number;
  /** Model-call time outside the UNet, as a share of all model-call time. */
  nonUnetShare: number;
  meanUnetBatchRows: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  /** Share of the wall time the main thread was busy (event-loop utilisation): CPU it takes from the cores. */
  mainThreadBusy: number;
  /** Executor time in model calls over executors × wall time. */
  executorBusy: number;
}

export const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.max(0, Math.ceil((p / 100) * xs.length) - 1))];

/** `reports` is the engine's batch observer output, cleared here before the load starts. */
export async function runConcurrentLoad(engine: Engine, reports: BatchReport[], request: (seed: bigint) => SequenceRequest, clients: number, perClient: number, executors = 1): Promise<LoadResult> {
  reports.length = 0;
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const firstImage: number[] = [];
  let images = 0;
  delay.enable();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async (_, client) => {
    for (let k = 0; k < perClient; k++) {
      const started = performance.now();
      let first = true;
      for await (const _ of engine.generate(request(BigInt(1000 + client * 100 + k)))) {
        if (first) firstImage.push(performance.now() - started);
        first = false;
        images++;
      }
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  const elu = performance.eventLoopUtilization(elu0);
  delay.disable();
  const unet = reports.filter((r) => r.model.endsWith('unet/model.onnx'));
  const unetMs = unet.reduce((s, r) => s + r.durationMs, 0);
  const allMs = reports.reduce((s, r) => s + r.durationMs, 0);
  const unetRows = unet.reduce((s, r) => s + r.rows, 0);
  return {
    images,
    seconds,
    imagesPerSecond: images / seconds,
    firstImageP50Ms: percentile(firstImage, 50),
    firstImageP95Ms: percentile(firstImage, 95),
    unetRowsPerSecond: unetRows / seconds,
    nonUnetShare: 1 - unetMs / allMs,
    meanUnetBatchRows: unetRows / unet.length,
    eventLoopDelayMs: { p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 },
    mainThreadBusy: elu.utilization,
    executorBusy: allMs / 1000 / (executors * seconds),
  };
}
