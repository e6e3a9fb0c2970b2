import {
  createNoopMeter,
  metrics,
  ProxyTracerProvider,
  trace,
  type Meter,
  type MeterProvider,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Validator } from '../../core/validate.js';
import type { MetricsProvider } from '../recorder.js';
import { DependencyTracing } from './dependency-tracing.js';
import { OtelDependencyMetrics, type Liveness } from './dependency-metrics.js';
import { injectTraceContext } from './client-propagation.js';
import { runInServerSpan } from './http-server-span.js';
import { Instruments } from './instruments.js';

/** Options of `openTelemetry()`; all optional. */
export interface OpenTelemetryOptions {
  /** Where spans go (default: the global provider, `trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /**
   * Where metrics go (default: the global provider). Register the SDK's provider before
   * calling `openTelemetry()`: the API hands out no-op meters until then, for good.
   */
  meterProvider?: MeterProvider;
  /** Spans per call and attempt (default true). */
  traces?: boolean;
  /** The Prometheus table's instruments through a Meter (default true). */
  metrics?: boolean;
}

/** `openTelemetry()`'s result: pass it as `metrics` to `dependency()` or `dependencies()`. */
export interface OpenTelemetry extends MetricsProvider {
  /** The tracer spans are started with (scope `bulwark`). */
  readonly tracer: Tracer;
  /** The meter instruments are created on (scope `bulwark`). */
  readonly meter: Meter;
  forDependency(name: string): OtelDependencyMetrics;
  /**
   * Runs `handle` for one inbound request in a SERVER span continued from its
   * `traceparent`; bulwark's HTTP server helpers call it when given this object. Without
   * traces (`traces: false`) it just runs `handle`.
   */
  traceRequest<T>(req: IncomingMessage, res: ServerResponse, handle: () => T): T;
  /**
   * Adds the current attempt's trace context to an outgoing request's headers, unless they
   * carry one or a fetch instrumentation will add its own; `resilientFetch` calls it per
   * attempt when given this object.
   */
  injectTraceContext(headers: Headers): void;
}

const SCOPE = 'bulwark';
const KNOWN = ['tracerProvider', 'meterProvider', 'traces', 'metrics'];
// What an unset ProxyTracerProvider delegates to: the API's shared no-op provider.
const NOOP_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * Is anything listening? Spans are live once the (proxy) tracer provider has a real
 * delegate, which may be registered after the dependencies were built; metrics are live
 * when the meter is not the API's no-op one (the metrics API has no proxy).
 */
class BackendLiveness implements Liveness {
  private tracesLive: boolean;

  constructor(
    private readonly tracerProvider: TracerProvider | undefined,
    private readonly metricsLive: boolean,
  ) {
    this.tracesLive =
      tracerProvider !== undefined && !(tracerProvider instanceof ProxyTracerProvider);
  }

  get live(): boolean {
    if (this.tracesLive || this.metricsLive) return true;
    const provider = this.tracerProvider;
    if (provider === undefined) return false;
    // Once a delegate is registered it stays: remember, and stop asking.
    return (this.tracesLive =
      (provider as ProxyTracerProvider).getDelegate() !== NOOP_TRACER_PROVIDER);
  }
}

/**
 * OpenTelemetry for bulwark, built on `@opentelemetry/api` only: per call a span (kind
 * CLIENT) parented on the active context and active while `fn` runs, a child span per
 * attempt, each policy's decisions as span events, bulwark's rejections marked with
 * `error.traceId`; and the Prometheus recorder's instruments through a Meter. With no SDK
 * registered it costs a property read per call.
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { openTelemetry } from 'bulwark/otel';
 *
 * const payments = dependency('payments', {
 *   retry: { maxAttempts: 3 },
 *   hedge: { delay: '200ms' },
 *   metrics: openTelemetry(), // the global tracer and meter providers
 * });
 * ```
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): OpenTelemetry {
  const v = new Validator('openTelemetry');
  const o = v.object(options, KNOWN);
  const hasMethod = (key: string, method: string): boolean => {
    const value = o[key];
    if (value === undefined) return true;
    const ok = typeof (value as Record<string, unknown> | null)?.[method] === 'function';
    if (!ok) v.problem(key, `an OpenTelemetry ${key} (with ${method}())`, value);
    return ok;
  };
  hasMethod('tracerProvider', 'getTracer');
  hasMethod('meterProvider', 'getMeter');
  const traces = v.bool('traces', o.traces, true);
  const withMetrics = v.bool('metrics', o.metrics, true);
  v.done();

  const tracerProvider = traces
    ? ((o.tracerProvider as TracerProvider | undefined) ?? trace.getTracerProvider())
    : undefined;
  const tracer = (tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
  const meter = withMetrics
    ? ((o.meterProvider as MeterProvider | undefined) ?? metrics.getMeterProvider()).getMeter(SCOPE)
    : createNoopMeter();
  const liveness = new BackendLiveness(tracerProvider, meter !== createNoopMeter());
  const instruments = new Instruments(meter);
  const byName = new Map<string, OtelDependencyMetrics>();
  return {
    tracer,
    meter,
    forDependency(name: string): OtelDependencyMetrics {
      let recorder = byName.get(name);
      if (recorder === undefined) {
        const tracing = traces ? new DependencyTracing(tracer, name) : undefined;
        recorder = new OtelDependencyMetrics(name, instruments, liveness, tracing);
        byName.set(name, recorder);
      }
      return recorder;
    },
    traceRequest<T>(req: IncomingMessage, res: ServerResponse, handle: () => T): T {
      return traces ? runInServerSpan(tracer, req, res, handle) : handle();
    },
    injectTraceContext(headers: Headers): void {
      if (traces) injectTraceContext(headers);
    },
  };
}
