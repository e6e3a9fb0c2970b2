import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  context as otelContext,
  createTraceState,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context as OtelContext,
  type Tracer,
} from '@opentelemetry/api';

// W3C Trace Context: version-traceid-parentid-flags, lower-case hex.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-|$)/;
const ZEROS = /^0+$/;

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The caller's trace context from the request headers: through the globally registered
 * propagator when there is one, else read from `traceparent`/`tracestate` directly, so a
 * caller's trace is continued even when the SDK was set up without a propagator.
 */
export function extractRequestContext(req: IncomingMessage): OtelContext {
  const extracted = propagation.extract(ROOT_CONTEXT, req.headers);
  if (trace.getSpanContext(extracted) !== undefined) return extracted;
  const m = TRACEPARENT.exec(header(req, 'traceparent')?.trim() ?? '');
  if (m === null || m[1] === 'ff' || ZEROS.test(m[2]!) || ZEROS.test(m[3]!)) return extracted;
  const state = header(req, 'tracestate');
  return trace.setSpanContext(extracted, {
    traceId: m[2]!,
    spanId: m[3]!,
    traceFlags: Number.parseInt(m[4]!, 16) & 1,
    isRemote: true,
    ...(state ? { traceState: createTraceState(state) } : {}),
  });
}

/**
 * Runs `handle` for one inbound request inside a SERVER span, continued from the caller's
 * `traceparent` or starting a new trace, and ended once when the response finishes or the
 * connection closes. When a span is already active (the user's own HTTP server
 * instrumentation made one), that span is the request's: no second SERVER span is made.
 * Attributes follow OpenTelemetry's HTTP conventions; the path is on the span only, never
 * on metrics.
 */
export function runInServerSpan<T>(
  tracer: Tracer,
  req: IncomingMessage,
  res: ServerResponse,
  handle: () => T,
): T {
  if (trace.getSpan(otelContext.active())?.isRecording()) return handle();
  const parent = extractRequestContext(req);
  const method = req.method ?? 'GET';
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  const span = tracer.startSpan(
    method,
    {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': method,
        'url.path': query < 0 ? url : url.slice(0, query),
        'url.scheme': 'http',
        'network.protocol.version': req.httpVersion,
      },
    },
    parent,
  );
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    res.off('finish', end);
    res.off('close', end);
    const status = res.statusCode;
    span.setAttribute('http.response.status_code', status);
    // A 4xx is the client's doing; only server errors mark the server span as failed.
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  };
  res.once('finish', end);
  res.once('close', end);
  return otelContext.with(trace.setSpan(parent, span), handle);
}
