import { createServer, type Server } from 'node:http';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { dependency } from '../../src/index.js';
import { bulwarkHandler } from '../../src/http.js';
import { openTelemetry } from '../../src/otel.js';
import { sdk, useContextManager } from './otel-support.js';

useContextManager();

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

let server: Server | undefined;
afterEach(async () => {
  propagation.disable();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A real node:http server whose handler calls a traced dependency. */
async function serve(status = 200) {
  const { tracerProvider, exporter } = sdk();
  const otel = openTelemetry({ tracerProvider });
  const inventory = dependency('inventory', { metrics: otel });
  server = createServer((req, res) => {
    void otel.traceRequest(req, res, async () => {
      const stock = await inventory.execute(() => 7);
      res.statusCode = status;
      res.end(String(stock));
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/stock/42?fresh=1`, exporter };
}

/** The spans once the server span has ended (it ends on 'finish', around the client's read). */
async function finished(exporter: { getFinishedSpans(): ReadableSpan[] }, count: number) {
  for (let i = 0; i < 200 && exporter.getFinishedSpans().length < count; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  return exporter.getFinishedSpans();
}

const byName = (spans: ReadableSpan[], name: string) => spans.find((s) => s.name === name)!;

describe('SERVER spans for inbound requests', () => {
  for (const propagator of ['no propagator registered', 'the W3C propagator'] as const) {
    it(`continues the caller's trace from traceparent (${propagator})`, async () => {
      if (propagator === 'the W3C propagator') {
        propagation.setGlobalPropagator(new W3CTraceContextPropagator());
      }
      const { url, exporter } = await serve();
      const res = await fetch(url, { headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` } });
      expect(await res.text()).toBe('7');
      const spans = await finished(exporter, 3);
      const server = byName(spans, 'GET');
      expect(server.kind).toBe(SpanKind.SERVER);
      expect(server.spanContext().traceId).toBe(TRACE_ID);
      expect(server.parentSpanContext?.spanId).toBe(PARENT_ID);
      expect(server.attributes).toMatchObject({
        'http.request.method': 'GET',
        'url.path': '/stock/42',
        'http.response.status_code': 200,
      });
      const call = byName(spans, 'inventory call');
      expect(call.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
      expect(call.spanContext().traceId).toBe(TRACE_ID);
    });
  }

  it('starts a new trace without traceparent, and marks a 5xx as an error', async () => {
    const { url, exporter } = await serve(503);
    const res = await fetch(url);
    expect(res.status).toBe(503);
    const spans = await finished(exporter, 3);
    const server = byName(spans, 'GET');
    expect(server.parentSpanContext).toBeUndefined();
    expect(server.status.code).toBe(SpanStatusCode.ERROR);
    expect(byName(spans, 'inventory call').spanContext().traceId).toBe(
      server.spanContext().traceId,
    );
  });

  it('ignores a malformed traceparent', async () => {
    const { url, exporter } = await serve();
    await (
      await fetch(url, { headers: { traceparent: `00-${'0'.repeat(32)}-${PARENT_ID}-01` } })
    ).text();
    const server = byName(await finished(exporter, 3), 'GET');
    expect(server.parentSpanContext).toBeUndefined();
    expect(server.spanContext().traceId).not.toBe('0'.repeat(32));
  });

  it('makes no second SERVER span when one is already active', async () => {
    const { tracerProvider, exporter } = sdk();
    const otel = openTelemetry({ tracerProvider });
    const outer = tracerProvider.getTracer('instrumentation-http').startSpan('GET /stock');
    // Not a real response: with a span already active, traceRequest must not touch it.
    const untouched = {} as never;
    const ran = context.with(trace.setSpan(context.active(), outer), () =>
      otel.traceRequest({ headers: {} } as never, untouched, () => 'ran'),
    );
    outer.end();
    expect(ran).toBe('ran');
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['GET /stock']);
  });

  it('bulwarkHandler({ metrics: otel }) opens the SERVER span itself: no traceRequest call by hand', async () => {
    const { tracerProvider, exporter } = sdk();
    const otel = openTelemetry({ tracerProvider });
    const inventory = dependency('inventory', { metrics: otel });
    server = createServer(
      bulwarkHandler(
        async (_req, res) => {
          res.end(String(await inventory.execute(() => 7)));
        },
        { metrics: otel },
      ),
    );
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/stock/42`, {
      headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` },
    });
    expect(await res.text()).toBe('7');
    const spans = await finished(exporter, 3);
    const serverSpan = byName(spans, 'GET');
    expect(serverSpan.kind).toBe(SpanKind.SERVER);
    expect(serverSpan.spanContext().traceId).toBe(TRACE_ID);
    expect(byName(spans, 'inventory call').parentSpanContext?.spanId).toBe(
      serverSpan.spanContext().spanId,
    );
  });
});
