import { monitorEventLoopDelay } from 'node:perf_hooks';

import { type Attributes, type Link, type Span, type SpanContext, context, metrics, trace } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

import type { BatchReport } from '../pipeline/batching/batchedModel.js';
import type { EngineStats } from '../pipeline/engine.js';
import type { BundleEvent } from '../pipeline/residency/bundleCatalog.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';

const PREFIX = 'stepframe_';

/**
 * Registers the process's OpenTelemetry trace and metrics SDKs: Prometheus /metrics on its own port
 * and, when configured, OTLP trace export. Without it the API's no-op tracer and meter are used.
 * The two SDKs are used directly rather than through `@opentelemetry/sdk-node`, which pulls in every
 * exporter (gRPC, proto, Zipkin, Jaeger: 181 MB of node_modules) for the two this server uses.
 */
export async function startTelemetry(config: Config, log: Logger): Promise<{ shutdown: () => Promise<void> }> {
  const resource = resourceFromAttributes({ 'service.name': 'stepframe' });
  const readers = config.metricsPort > 0 ? [new PrometheusExporter({ port: config.metricsPort, host: config.metricsHost })] : [];
  const spanProcessors = config.otlpEndpoint ? [new BatchSpanProcessor(new OTLPTraceExporter({ url: config.otlpEndpoint }))] : [];
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors });
  // register() also installs the AsyncLocalStorage context manager that carries a request's span across awaits.
  tracerProvider.register();
  const meterProvider = new MeterProvider({ resource, readers });
  metrics.setGlobalMeterProvider(meterProvider);
  log.info('telemetry started', { metrics: config.metricsPort > 0 ? `http://${config.metricsHost}:${config.metricsPort}/metrics` : 'off', otlp: config.otlpEndpoint || 'off' });
  return {
    shutdown: async () => {
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}

/** The service's instruments, all named `stepframe_*`, labelled by method, stage and status code. */
export class Telemetry {
  readonly tracer = trace.getTracer('stepframe');
  private readonly meter = metrics.getMeter('stepframe');
  private readonly requests = this.meter.createCounter(`${PREFIX}requests_total`, { description: 'RPCs by method, stable error code (OK on success) and gRPC status' });
  private readonly images = this.meter.createCounter(`${PREFIX}images_generated_total`, { description: 'images streamed; rate() gives images per second' });
  private readonly batchRows = this.meter.createHistogram(`${PREFIX}batch_rows`, {
    description: 'rows per model call',
    advice: { explicitBucketBoundaries: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64] },
  });
  private readonly unetSeconds = this.meter.createHistogram(`${PREFIX}unet_step_seconds`, { description: 'duration of one batched UNet call', unit: 's' });
  private readonly stageSeconds = this.meter.createHistogram(`${PREFIX}stage_seconds`, { description: 'time per image and stage', unit: 's' });
  private readonly bundleLoads = this.meter.createCounter(`${PREFIX}bundle_loads_total`, { description: 'bundle loads (at start, and on request under --memory-budget or --max-loaded-bundles)' });
  private readonly bundleUnloads = this.meter.createCounter(`${PREFIX}bundle_unloads_total`, { description: 'idle bundles unloaded to make room for another' });
  private readonly bundleLoadSeconds = this.meter.createHistogram(`${PREFIX}bundle_load_seconds`, {
    description: 'time to load a bundle (weights verified, sessions created in every executor)',
    unit: 's',
    advice: { explicitBucketBoundaries: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250] },
  });
  private readonly firstImageSeconds = this.meter.createHistogram(`${PREFIX}time_to_first_image_seconds`, { description: 'request arrival to first image', unit: 's' });

  constructor(stats: () => EngineStats, serving: () => boolean = () => true) {
    // 1 while health is SERVING: the signal for "a replica is NOT_SERVING" alerts.
    this.meter.createObservableGauge(`${PREFIX}serving`, { description: '1 while health reports SERVING, else 0' }).addCallback((result) => result.observe(serving() ? 1 : 0));
    const gauges: [string, string, (s: EngineStats) => number][] = [
      ['queue_depth', 'sequences waiting for a generation slot or for their bundle to load', (s) => s.queuedSequences],
      ['active_sequences', 'sequences generating', (s) => s.activeSequences],
      ['paused_sequences', 'sequences waiting for a slow reader, holding no generation slot', (s) => s.pausedSequences],
      ['queued_unet_rows', 'UNet rows waiting for a batch', (s) => s.queuedUnetRows],
      ['executors', 'model executors (worker threads) holding every model', (s) => s.executors.executors],
      ['executors_busy', 'executors running a model call now', (s) => s.executors.busy],
      ['executor_restarts', 'executors lost and replaced since start', (s) => s.executors.restarts],
      ['bundles_loaded', 'bundles whose sessions are loaded', (s) => s.loadedBundles],
      ['loaded_weight_bytes', 'bytes of weights the loaded bundles hold, as --memory-budget counts them', (s) => s.loadedWeightBytes],
    ];
    for (const [name, description, read] of gauges) {
      this.meter.createObservableGauge(`${PREFIX}${name}`, { description }).addCallback((result) => result.observe(read(stats())));
    }
    // The main thread's event-loop delay since the previous scrape: model calls run in executors,
    // so this stays near the timer resolution unless something blocks the loop.
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    this.meter.createObservableGauge(`${PREFIX}event_loop_delay_seconds`, { description: 'main-thread event-loop delay since the last scrape', unit: 's' }).addCallback((result) => {
      if (delay.count === 0) return;
      // A gauge may not carry "quantile" (summaries only), so the statistic is named in `stat`.
      for (const [stat, value] of [['p50', delay.percentile(50)], ['p99', delay.percentile(99)], ['max', delay.max]] as const) result.observe(value / 1e9, { stat });
      delay.reset();
    });
    // Which provider really runs the models: a CUDA request that fell back to CPU shows here.
    this.meter.createObservableGauge(`${PREFIX}models`, { description: 'loaded models by the execution provider running them' }).addCallback((result) => {
      for (const [provider, count] of Object.entries(stats().modelsByProvider)) result.observe(count, { provider });
    });
  }

  /** `code` tells internal failures apart (MODEL_FAILURE, BUNDLE_INVALID, UNEXPECTED), which all answer INTERNAL. */
  countRequest(method: string, code: string, grpcStatus: string): void {
    this.requests.add(1, { method, code, grpc_status: grpcStatus });
  }

  countImage(model: string): void {
    this.images.add(1, { model });
  }

  observeFirstImage(seconds: number): void {
    this.firstImageSeconds.record(seconds);
  }

  /** A stage span under the image span, placed at its measured times, and its histogram. */
  recordStage(parent: Span, stage: string, startMs: number, endMs: number): void {
    this.stageSeconds.record((endMs - startMs) / 1000, { stage });
    const ctx = trace.setSpan(context.active(), parent);
    this.tracer.startSpan(`stage ${stage}`, { startTime: performance.timeOrigin + startMs }, ctx).end(performance.timeOrigin + endMs);
  }

  readonly observeBundle = (event: BundleEvent): void => {
    if (event.kind === 'load') {
      this.bundleLoads.add(1, { model: event.model });
      this.bundleLoadSeconds.record(event.seconds ?? 0, { model: event.model });
    } else {
      this.bundleUnloads.add(1, { model: event.model });
    }
  };

  /** One span per model call, linked to the request spans it served. */
  readonly observeBatch = (report: BatchReport): void => {
    const model = report.model.split('/').slice(-2, -1)[0] ?? report.model;
    const attributes: Attributes = { 'stepframe.model_file': report.model, 'stepframe.rows': report.rows, 'stepframe.requests': report.requests };
    this.batchRows.record(report.rows, { model });
    if (model === 'unet') this.unetSeconds.record(report.durationMs / 1000);
    const links: Link[] = report.traces.filter((t): t is SpanContext => !!t && typeof t === 'object' && 'traceId' in t).map((context) => ({ context }));
    const span = this.tracer.startSpan(`batch ${model}`, { startTime: performance.timeOrigin + report.startedAt, links, attributes });
    if (report.error) span.setStatus({ code: 2, message: 'model call failed' });
    span.end(performance.timeOrigin + report.startedAt + report.durationMs);
  };
}
