/** Writes the benchmark's table between the markers in docs/performance.md. */
import { readFileSync, writeFileSync } from 'node:fs';

export function updatePerformanceDoc(file: string, r: Record<string, any>): void {
  const fmt = (x: number, d = 2) => x.toFixed(d);
  const w = r.executors.workers;
  const m = r.executors.mainThread;
  const delay = (x: { p50: number; p99: number; max: number }) => `${fmt(x.p50, 1)} / ${fmt(x.p99, 1)} / ${fmt(x.max, 1)} ms`;
  const header = `Measured ${r.date.slice(0, 10)} on ${r.cpus} cores (${r.cpuModel}), bundle \`${r.bundle}\` (seeded default-size weights), 50 DDPM steps, guidance 7.5, maxBatch ${r.maxBatch}. ` +
    `**Executors** is the engine as it ships: ${r.executorCount} worker executors with one intra-op thread each. **Single loop** is the engine before executors: sessions on the main thread with ${r.cpus} intra-op threads (\`--execution-mode main-thread\`). ` +
    `The concurrent load is 8 closed-loop clients, each running three two-step sequences back to back; the median of ${r.executors.allRuns.workersImagesPerSecond.length} alternating rounds per engine.`;
  const table = [
    header,
    '',
    '| measure | result | goal |',
    '| --- | --- | --- |',
    `| engine overhead (lone 4-step sequence, engine / bare session.run, one thread each) | ${fmt(r.overhead.engineMedianMs, 0)} ms / ${fmt(r.overhead.bareMedianMs, 0)} ms = **${fmt(r.overhead.ratio, 3)}×** | ≤ 1.05× |`,
    `| batching gain (8 two-step sequences, concurrent vs sequential throughput) | ${fmt(r.batching.concurrent.imagesPerSecond)} vs ${fmt(r.batching.sequential.imagesPerSecond)} images/s = **${fmt(r.batching.throughputRatio)}×** | ≥ 1.5× |`,
    `| executors vs single loop, concurrent load | ${fmt(w.imagesPerSecond)} vs ${fmt(m.imagesPerSecond)} images/s = **${fmt(r.executors.speedup)}×** | ≥ 1.8× |`,
    `| served UNet rows/s under that load / roofline | ${fmt(r.roofline.servedRowsPerSecond, 0)} / ${fmt(r.roofline.best.rowsPerSecond, 0)} (${r.roofline.best.layout}, batch ${r.roofline.best.batch}) = **${fmt(r.roofline.fraction)}** | ≥ 0.8 |`,
    `| model-call time outside the UNet; main thread busy (both out of the same cores: the ceiling of the row above) | ${fmt(r.roofline.nonUnetShare * 100, 1)}%; ${fmt(w.mainThreadBusy * 100, 1)}% of one core (ceiling ${fmt(r.roofline.ceiling)}) | |`,
    `| executors busy in model calls, as the main thread sees them | ${fmt(w.executorBusy * 100, 1)}% | |`,
    `| mean UNet rows per call, executors / single loop | ${fmt(w.meanUnetBatchRows, 1)} / ${fmt(m.meanUnetBatchRows, 1)} | |`,
    `| event-loop delay p50 / p99 / max, executors | ${delay(w.eventLoopDelayMs)} | p99 ≤ 5 ms |`,
    `| event-loop delay p50 / p99 / max, single loop | ${delay(m.eventLoopDelayMs)} | |`,
    `| time to first image p50 / p95, executors | ${fmt(w.firstImageP50Ms, 0)} / ${fmt(w.firstImageP95Ms, 0)} ms | |`,
    `| time to first image p50 / p95, single loop | ${fmt(m.firstImageP50Ms, 0)} / ${fmt(m.firstImageP95Ms, 0)} ms | |`,
    `| latency p50 / p95, 8 sequential two-step sequences (executors) | ${fmt(r.batching.sequential.p50Ms, 0)} / ${fmt(r.batching.sequential.p95Ms, 0)} ms | |`,
    `| latency p50 / p95, the same 8 at once (executors) | ${fmt(r.batching.concurrent.p50Ms, 0)} / ${fmt(r.batching.concurrent.p95Ms, 0)} ms | |`,
    r.pytorchPeer
      ? `| PyTorch reference sampler / engine, lone 4-step sequence, one thread each | ${fmt(r.pytorchPeer.pytorchMedianMs, 0)} ms / ${fmt(r.pytorchPeer.engineMedianMs, 0)} ms = **${fmt(r.pytorchPeer.speedup)}×** | ≥ 3× |`
      : '| PyTorch peer | not run (--skip-python) | ≥ 3× |',
    `| RSS growth, ${r.memory.sequences} sequences vs 20 (executors included) | ${fmt(r.memory.rssAfter20Mb, 1)} → ${fmt(r.memory.rssAfterAllMb, 1)} MiB = **${fmt(r.memory.growth * 100, 1)}%** | ≤ 5% |`,
    '',
    'Roofline rows (bare UNet calls, no engine):',
    '',
    '| layout | batch | UNet rows/s |',
    '| --- | --- | --- |',
    ...r.roofline.rows.map((row: { layout: string; batch: number; rowsPerSecond: number }) => `| ${row.layout} | ${row.batch} | ${fmt(row.rowsPerSecond, 0)} |`),
  ].join('\n');
  let doc: string;
  try {
    doc = readFileSync(file, 'utf8');
  } catch {
    doc = '# Performance\n\n<!-- bench:engine:start -->\n<!-- bench:engine:end -->\n';
  }
  doc = doc.replace(/<!-- bench:engine:start -->[\s\S]*<!-- bench:engine:end -->/, `<!-- bench:engine:start -->\n${table}\n<!-- bench:engine:end -->`);
  writeFileSync(file, doc);
}
