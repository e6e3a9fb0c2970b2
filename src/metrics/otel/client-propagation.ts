import { channel } from 'node:diagnostics_channel';
import { context as otelContext, isSpanContextValid, propagation, trace } from '@opentelemetry/api';

// Fetch instrumentations (OpenTelemetry's undici one among them) hook in here and add their
// own trace headers to each request undici creates.
const UNDICI_REQUEST_CREATE = channel('undici:request:create');

const setter = {
  set(carrier: Headers, key: string, value: string): void {
    carrier.set(key, value);
  },
};

/**
 * Adds the active trace context (the current attempt's span) to an outgoing request's
 * headers, unless someone else does: headers that already carry `traceparent`, or a fetch
 * instrumentation listening on undici's request channel (it injects its own, and a second
 * copy would make two parents). Uses the global propagator; with none registered, writes
 * W3C `traceparent` itself.
 */
export function injectTraceContext(headers: Headers): void {
  if (headers.has('traceparent') || UNDICI_REQUEST_CREATE.hasSubscribers) return;
  const active = otelContext.active();
  propagation.inject(active, headers, setter);
  if (headers.has('traceparent')) return;
  const span = trace.getSpanContext(active);
  if (span === undefined || !isSpanContextValid(span)) return;
  const flags = (span.traceFlags & 1).toString(16).padStart(2, '0');
  headers.set('traceparent', `00-${span.traceId}-${span.spanId}-${flags}`);
  const state = span.traceState?.serialize();
  if (state) headers.set('tracestate', state);
}
