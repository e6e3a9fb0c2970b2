import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type Span,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/** A pull reader: `collect()` reads every instrument now (the SDK's in-memory reader). */
export class TestMetricReader extends MetricReader {
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

/** Counts spans started and ended, to prove none is left open. */
export class CountingProcessor implements SpanProcessor {
  started = 0;
  ended = 0;
  readonly open = new Set<Span>();
  onStart(span: Span): void {
    this.started++;
    this.open.add(span);
  }
  onEnd(span: ReadableSpan): void {
    this.ended++;
    this.open.delete(span as Span);
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Installs the async-hooks context manager once for the test file. */
export function useContextManager(): void {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}

/** A tracer provider recording every span into memory, and a meter provider with a pull reader. */
export function sdk(): {
  tracerProvider: BasicTracerProvider;
  exporter: InMemorySpanExporter;
  counter: CountingProcessor;
  meterProvider: MeterProvider;
  reader: TestMetricReader;
} {
  const exporter = new InMemorySpanExporter();
  const counter = new CountingProcessor();
  const tracerProvider = new BasicTracerProvider({
    sampler: new AlwaysOnSampler(),
    spanProcessors: [new SimpleSpanProcessor(exporter), counter],
  });
  const reader = new TestMetricReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  return { tracerProvider, exporter, counter, meterProvider, reader };
}

const SHOWN =
  /^bulwark\.(outcome|attempt|attempts|hedge|budget\.remaining_ms|attempt\.timeout_ms)$/;

function ms(t: [number, number]): number {
  return t[0] * 1e3 + t[1] / 1e6;
}

function attrs(a: Record<string, unknown>, shown: RegExp): string {
  const parts = Object.entries(a)
    .filter(([k]) => shown.test(k))
    .map(([k, v]) => `${k.replace(/^bulwark\./, '')}=${String(v)}`);
  return parts.length ? ` {${parts.join(' ')}}` : '';
}

/**
 * Renders finished spans as a tree, children in start order, with times in ms relative to
 * the first span (virtual-clock times are exact), selected attributes and every event.
 */
export function renderTree(spans: readonly ReadableSpan[]): string {
  const byParent = new Map<string | undefined, ReadableSpan[]>();
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  for (const s of spans) {
    const parent = s.parentSpanContext?.spanId;
    const key = parent !== undefined && ids.has(parent) ? parent : undefined;
    byParent.set(key, [...(byParent.get(key) ?? []), s]);
  }
  const t0 = Math.min(...spans.map((s) => ms(s.startTime)));
  const lines: string[] = [];
  const walk = (parent: string | undefined, indent: string): void => {
    const children = [...(byParent.get(parent) ?? [])].sort(
      (a, b) => ms(a.startTime) - ms(b.startTime),
    );
    for (const s of children) {
      const start = Math.round(ms(s.startTime) - t0);
      const end = Math.round(ms(s.endTime) - t0);
      const status = s.status.code === 2 ? ' ERROR' : '';
      lines.push(`${indent}${s.name} [${start}..${end} ms]${status}${attrs(s.attributes, SHOWN)}`);
      for (const e of s.events) {
        if (e.name === 'exception') continue;
        const at = Math.round(ms(e.time) - t0);
        lines.push(`${indent}  · ${at} ms ${e.name}${attrs(e.attributes ?? {}, /^bulwark\./)}`);
      }
      walk(s.spanContext().spanId, `${indent}  `);
    }
  };
  walk(undefined, '');
  return lines.join('\n');
}
