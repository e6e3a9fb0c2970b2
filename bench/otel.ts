/**
 * `npm run bench:otel`: what `bulwark/otel` adds per call to the full `dependency()`
 * pipeline, next to the Prometheus recorder, in two phases of one process:
 *   1. only `@opentelemetry/api` (no SDK, no context manager registered);
 *   2. the SDK recording every span (always-on sampler, batch processor, in-memory
 *      exporter), the async-hooks context manager, and a meter provider with a reader.
 * Cases of a phase are interleaved over several rounds.
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { dependency, type DependencyConfig } from '../src/index.js';
import { openTelemetry } from '../src/otel.js';
import { prometheusMetrics } from '../src/prometheus.js';
import { bareCall, measure, type BenchCase } from './harness.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const config: DependencyConfig = {
  budget: '10s',
  timeout: '1s',
  retry: { maxAttempts: 3 },
  circuitBreaker: { consecutiveFailures: 5 },
  loadShedder: false, // the same pipeline as bench/metrics.ts
  bulkhead: { maxConcurrent: 100 },
};

class PullReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Each case's lowest round: on a shared machine other processes only ever add time, so
 * the minimum is the steadiest estimate of a case's own cost (the median is printed too).
 */
async function interleaved(cases: BenchCase[]): Promise<Map<string, number>> {
  const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of cases) samples.get(c.name)!.push((await measure(c)).nsPerCall);
  }
  const out = new Map<string, number>();
  for (const [name, ns] of samples) {
    ns.sort((a, b) => a - b);
    out.set(name, ns[0]!);
    medians.set(name, ns[ns.length >> 1]!);
  }
  return out;
}
const medians = new Map<string, number>();

// Phase 1: the API alone.
const off = dependency('off', config);
const promOn = dependency('prom', {
  ...config,
  metrics: prometheusMetrics({ registry: new Registry() }),
});
const otelNoSdk = dependency('otel-api-only', { ...config, metrics: openTelemetry() });
const phase1 = await interleaved([
  { group: 'otel', name: 'bare await fn()', run: bareCall },
  { group: 'otel', name: 'full pipeline, no metrics', run: () => off.execute(bareCall) },
  { group: 'otel', name: 'full pipeline, prometheus', run: () => promOn.execute(bareCall) },
  {
    group: 'otel',
    name: 'full pipeline, otel (API only, no SDK)',
    run: () => otelNoSdk.execute(bareCall),
  },
]);

// Phase 2: the SDK records every span.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({
  sampler: new AlwaysOnSampler(),
  spanProcessors: [new BatchSpanProcessor(exporter)],
});
trace.setGlobalTracerProvider(tracerProvider);
// The in-memory exporter keeps every span: empty it now and then so memory stays flat.
setInterval(() => exporter.reset(), 100).unref();
const meterProvider = new MeterProvider({ readers: [new PullReader()] });
const otelSdk = dependency('otel-sdk', {
  ...config,
  metrics: openTelemetry({ tracerProvider, meterProvider }),
});
const otelTracesOnly = dependency('otel-sdk-traces', {
  ...config,
  metrics: openTelemetry({ tracerProvider, metrics: false }),
});
const otelMetricsOnly = dependency('otel-sdk-metrics', {
  ...config,
  metrics: openTelemetry({ meterProvider, traces: false }),
});
// The SDK's own price for what a traced call makes — two spans, each active in turn —
// around the untraced pipeline: what bulwark adds beyond it is its own cost.
const sdkTracer = tracerProvider.getTracer('floor');
const sdkFloor = async (): Promise<number> => {
  const call = sdkTracer.startSpan('floor call');
  const scope = trace.setSpan(context.active(), call);
  const attempt = sdkTracer.startSpan('floor attempt', undefined, scope);
  const value = await context.with(trace.setSpan(scope, attempt), () => off.execute(bareCall));
  attempt.end();
  call.end();
  return value;
};
const phase2 = await interleaved([
  { group: 'otel', name: 'SDK floor: 2 spans + context.with around the pipeline', run: sdkFloor },
  {
    group: 'otel',
    name: 'full pipeline, no metrics (context manager on)',
    run: () => off.execute(bareCall),
  },
  {
    group: 'otel',
    name: 'full pipeline, otel SDK: metrics only',
    run: () => otelMetricsOnly.execute(bareCall),
  },
  {
    group: 'otel',
    name: 'full pipeline, otel SDK: traces only',
    run: () => otelTracesOnly.execute(bareCall),
  },
  {
    group: 'otel',
    name: 'full pipeline, otel SDK: traces + metrics',
    run: () => otelSdk.execute(bareCall),
  },
]);
await tracerProvider.shutdown();

const lines = [
  `Node ${process.version}, ${process.platform}/${process.arch}, ${ROUNDS} interleaved rounds`,
  '',
  '| case | ns/call (min of rounds) | added vs no metrics | median of rounds |',
  '|---|---:|---:|---:|',
];
const base1 = phase1.get('full pipeline, no metrics')!;
for (const [name, ns] of phase1) {
  const added = name.startsWith('bare') ? '' : (ns - base1).toFixed(0);
  lines.push(`| ${name} | ${ns.toFixed(0)} | ${added} | ${medians.get(name)!.toFixed(0)} |`);
}
const base2 = phase2.get('full pipeline, no metrics (context manager on)')!;
for (const [name, ns] of phase2)
  lines.push(
    `| ${name} | ${ns.toFixed(0)} | ${(ns - base2).toFixed(0)} | ${medians.get(name)!.toFixed(0)} |`,
  );
const floor = phase2.get('SDK floor: 2 spans + context.with around the pipeline')!;
const traced = phase2.get('full pipeline, otel SDK: traces only')!;
lines.push(
  '',
  `bulwark's own tracing cost beyond the SDK floor: ${(traced - floor).toFixed(0)} ns/call`,
);
console.log(lines.join('\n'));
