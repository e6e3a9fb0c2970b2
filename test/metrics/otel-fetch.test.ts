import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type Server } from 'node:http';
import { context, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { dependency } from '../../src/index.js';
import { resilientFetch } from '../../src/http.js';
import { openTelemetry } from '../../src/otel.js';
import { sdk, useContextManager } from './otel-support.js';

useContextManager();

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A real server that answers with every traceparent header it received. */
async function echoTraceparents(): Promise<string> {
  server = createServer((req, res) => {
    const seen: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i]!.toLowerCase() === 'traceparent') seen.push(req.rawHeaders[i + 1]!);
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(seen));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
}

describe('trace context on outgoing requests', () => {
  it('resilientFetch({ metrics: otel }) sends the attempt span as the parent, once', async () => {
    const url = await echoTraceparents();
    const { tracerProvider, exporter } = sdk();
    const otel = openTelemetry({ tracerProvider });
    const api = dependency('api', { metrics: otel });
    const res = await resilientFetch(api, url, undefined, { metrics: otel });
    const seen = (await res.json()) as string[];
    const attempt = exporter.getFinishedSpans().find((s) => s.name === 'api attempt')!;
    const { traceId, spanId } = attempt.spanContext();
    expect(seen).toEqual([`00-${traceId}-${spanId}-01`]);
  });

  it('resilientFetch without the metrics option sends no traceparent of its own', async () => {
    const url = await echoTraceparents();
    const { tracerProvider } = sdk();
    const api = dependency('api', { metrics: openTelemetry({ tracerProvider }) });
    const res = await resilientFetch(api, url);
    expect(await res.json()).toEqual([]);
  });

  it('sends the attempt span as the parent when no fetch instrumentation does', async () => {
    const url = await echoTraceparents();
    const { tracerProvider, exporter } = sdk();
    const otel = openTelemetry({ tracerProvider });
    const api = dependency('api', { metrics: otel });
    const seen = await api.execute(async (ctx) => {
      const headers = new Headers();
      otel.injectTraceContext(headers);
      const res = await fetch(url, { headers, signal: ctx.signal });
      return (await res.json()) as string[];
    });
    const attempt = exporter.getFinishedSpans().find((s) => s.name === 'api attempt')!;
    const { traceId, spanId } = attempt.spanContext();
    expect(seen).toEqual([`00-${traceId}-${spanId}-01`]);
  });

  it('adds nothing when a fetch instrumentation injects its own: one traceparent, not two', async () => {
    const url = await echoTraceparents();
    const { tracerProvider } = sdk();
    const otel = openTelemetry({ tracerProvider });
    const api = dependency('api', { metrics: otel });
    // What a fetch instrumentation does: add the active span's context to each request.
    const instrumentation = (message: unknown): void => {
      const span = trace.getSpanContext(context.active());
      if (span === undefined) return;
      (message as { request: { addHeader(k: string, v: string): void } }).request.addHeader(
        'traceparent',
        `00-${span.traceId}-${span.spanId}-01`,
      );
    };
    subscribe('undici:request:create', instrumentation);
    try {
      const seen = await api.execute(async () => {
        const headers = new Headers();
        otel.injectTraceContext(headers);
        return (await (await fetch(url, { headers })).json()) as string[];
      });
      expect(seen).toHaveLength(1);
    } finally {
      unsubscribe('undici:request:create', instrumentation);
    }
  });

  it('keeps a traceparent the caller set', () => {
    const { tracerProvider } = sdk();
    const headers = new Headers({ traceparent: 'mine' });
    openTelemetry({ tracerProvider }).injectTraceContext(headers);
    expect(headers.get('traceparent')).toBe('mine');
  });
});
