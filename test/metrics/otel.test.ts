import { context, trace, SpanKind, SpanStatusCode, type Tracer } from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { dependency, MemoryStore, TimeoutError } from '../../src/index.js';
import { openTelemetry } from '../../src/otel.js';
import { VirtualClock } from '../../src/testing/index.js';
import { flush } from '../support/async.js';
import { renderTree, sdk, useContextManager } from './otel-support.js';

/** dependency() adds a retry, a waiting breaker and a shedder by default: these tests look at one part alone. */
const ONLY_CONFIGURED = { retry: false, circuitBreaker: false, loadShedder: false } as const;

useContextManager();

// An epoch start, so span times are taken as exact epoch ms (small numbers would be read as
// performance-relative and shifted by up to a millisecond).
const T0 = Date.UTC(2026, 0, 1);
const virtualClock = (): VirtualClock => new VirtualClock({ start: T0 });

const http = (status: number, extra: object = {}): Error =>
  Object.assign(new Error(`HTTP ${status}`), { status, ...extra });

const named = (spans: readonly ReadableSpan[], name: string): ReadableSpan[] =>
  spans.filter((s) => s.name === name);
const one = (spans: readonly ReadableSpan[], name: string): ReadableSpan => {
  const found = named(spans, name);
  expect(found).toHaveLength(1);
  return found[0]!;
};
/** The policy decisions on a span (the SDK's `exception` events left out). */
const decisions = (s: ReadableSpan): [string, unknown][] =>
  s.events.filter((e) => e.name !== 'exception').map((e) => [e.name, e.attributes]);
const eventNames = (s: ReadableSpan): string[] => decisions(s).map(([name]) => name);

export const RETRIED_AND_HEDGED = `payments call [0..360 ms] {budget.remaining_ms=2000 outcome=success attempts=3}
  · 10 ms bulwark.hedge {attempt=1 hedge=1 hedge.reason=failure}
  · 20 ms bulwark.retry {attempt=2 retry.delay_ms=100 retry.reason=status}
  · 130 ms bulwark.hedge {attempt=2 hedge=1 hedge.reason=failure}
  · 140 ms bulwark.retry {attempt=3 retry.delay_ms=150 retry.reason=status retry.retry_after_ms=150}
  · 340 ms bulwark.hedge {attempt=3 hedge=1 hedge.reason=delay}
  · 360 ms bulwark.hedge.won {attempt=3 hedge=1}
  payments attempt [0..10 ms] ERROR {attempt=1 attempt.timeout_ms=500 outcome=failure}
    POST /charge [0..10 ms]
  payments attempt [10..20 ms] ERROR {attempt=1 hedge=1 attempt.timeout_ms=490 outcome=failure}
    POST /charge [10..20 ms]
  payments attempt [120..130 ms] ERROR {attempt=2 attempt.timeout_ms=500 outcome=failure}
    POST /charge [120..130 ms]
  payments attempt [130..140 ms] ERROR {attempt=2 hedge=1 attempt.timeout_ms=490 outcome=failure}
    POST /charge [130..140 ms]
  payments attempt [290..360 ms] {attempt=3 attempt.timeout_ms=500 outcome=abandoned}
    POST /charge [290..360 ms]
  payments attempt [340..360 ms] {attempt=3 hedge=1 attempt.timeout_ms=450 outcome=success}
    POST /charge [340..360 ms]`;

describe('openTelemetry traces', () => {
  it('traces a call retried twice after 503s whose third attempt is won by a hedge', async () => {
    const { tracerProvider, exporter, counter } = sdk();
    const clock = virtualClock();
    const user: Tracer = tracerProvider.getTracer('user');
    const payments = dependency('payments', {
      clock,
      budget: 2000,
      timeout: 500,
      retry: { maxAttempts: 3, backoff: 100 },
      hedge: { delay: 50 },
      metrics: openTelemetry({ tracerProvider }),
    });
    let runs = 0;
    const outcome = payments.execute(async (ctx) => {
      const run = ++runs;
      // The user's own instrumentation: it nests under whatever span is active.
      const span = user.startSpan('POST /charge', { startTime: clock.now() });
      try {
        if (ctx.attempt < 3) {
          await clock.sleep(10);
          throw http(503, ctx.attempt === 2 ? { retryAfterMs: 150 } : {});
        }
        if (run === 5) {
          await clock.sleep(500, ctx.signal).catch(() => undefined);
          return 'slow';
        }
        await clock.sleep(20);
        return 'charged';
      } finally {
        span.end(clock.now());
      }
    });
    await clock.runAll();
    await expect(outcome).resolves.toBe('charged');
    const spans = exporter.getFinishedSpans();
    expect(renderTree(spans)).toBe(RETRIED_AND_HEDGED);
    const call = one(spans, 'payments call');
    expect(call.kind).toBe(SpanKind.CLIENT);
    expect(call.status.code).toBe(SpanStatusCode.UNSET);
    for (const inner of named(spans, 'POST /charge')) {
      const parent = spans.find((s) => s.spanContext().spanId === inner.parentSpanContext?.spanId);
      expect(parent?.name).toBe('payments attempt');
    }
    expect(counter.started).toBe(counter.ended);
    expect(trace.getActiveSpan()).toBeUndefined();
  });

  it('records the retry budget refusing a retry, and why retrying stopped', async () => {
    const { tracerProvider, exporter } = sdk();
    const clock = virtualClock();
    const quotes = dependency('quotes', {
      clock,
      retry: { maxAttempts: 3, backoff: 0, retryBudget: { ratio: 0, minPerSecond: 0 } },
      metrics: openTelemetry({ tracerProvider }),
    });
    await expect(quotes.execute(() => Promise.reject(http(503)))).rejects.toMatchObject({
      status: 503,
    });
    const call = one(exporter.getFinishedSpans(), 'quotes call');
    expect(decisions(call)).toEqual([
      ['bulwark.retry.budget_exhausted', { 'bulwark.attempt': 1 }],
      ['bulwark.retry.give_up', { 'bulwark.attempt': 1, 'bulwark.retry.give_up_reason': 'budget' }],
    ]);
    expect(call.attributes['bulwark.outcome']).toBe('failure');
  });

  it('parents the call span on the active context', async () => {
    const { tracerProvider, exporter } = sdk();
    const orders = dependency('orders', { metrics: openTelemetry({ tracerProvider }) });
    const outer = tracerProvider.getTracer('user').startSpan('checkout');
    await context.with(trace.setSpan(context.active(), outer), () => orders.execute(() => 1));
    outer.end();
    const call = one(exporter.getFinishedSpans(), 'orders call');
    expect(call.parentSpanContext?.spanId).toBe(outer.spanContext().spanId);
    expect(call.spanContext().traceId).toBe(outer.spanContext().traceId);
  });

  it('rejects through an open breaker with an event, status ERROR and error.traceId', async () => {
    const { tracerProvider, exporter } = sdk();
    const clock = virtualClock();
    const ledger = dependency('ledger', {
      ...ONLY_CONFIGURED,
      clock,
      circuitBreaker: { consecutiveFailures: 1, halfOpenAfter: 1000, whileOpen: { wait: false } },
      metrics: openTelemetry({ tracerProvider }),
    });
    const failure = http(500);
    await expect(ledger.execute(() => Promise.reject(failure))).rejects.toBe(failure);
    const rejected = await ledger.execute(() => 1).catch((e: unknown) => e);
    expect(rejected).toMatchObject({ code: 'ERR_CIRCUIT_OPEN' });
    const [first, second] = named(exporter.getFinishedSpans(), 'ledger call');
    expect(eventNames(first!)).toContain('bulwark.circuit.state_change');
    expect(
      first!.events.find((e) => e.name === 'bulwark.circuit.state_change')?.attributes,
    ).toEqual({ 'bulwark.circuit.from': 'closed', 'bulwark.circuit.to': 'open' });
    expect(second!.status.code).toBe(SpanStatusCode.ERROR);
    expect(second!.attributes['bulwark.outcome']).toBe('short_circuited');
    expect(second!.attributes['bulwark.attempts']).toBe(0);
    const event = second!.events.find((e) => e.name === 'bulwark.circuit.rejected');
    expect(event?.attributes).toEqual({
      'bulwark.circuit.state': 'open',
      'bulwark.retry.retry_after_ms': 1000,
    });
    expect((rejected as { traceId?: string }).traceId).toBe(second!.spanContext().traceId);
    // A user's own error is theirs: bulwark writes nothing on it.
    expect((failure as { traceId?: string }).traceId).toBeUndefined();
    expect(first!.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('records a full bulkhead, and a queued call with its wait', async () => {
    const { tracerProvider, exporter } = sdk();
    const clock = virtualClock();
    const otel = openTelemetry({ tracerProvider });
    const full = dependency('search', {
      ...ONLY_CONFIGURED,
      clock,
      bulkhead: { maxConcurrent: 1 },
      metrics: otel,
    });
    const queued = dependency('render', {
      ...ONLY_CONFIGURED,
      clock,
      bulkhead: { maxConcurrent: 1, maxQueue: 1 },
      metrics: otel,
    });
    const hold = (ms: number) => () => clock.sleep(ms).then(() => 'done');
    const running = full.execute(hold(100));
    const refused = await full.execute(hold(1)).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'ERR_BULKHEAD_FULL', reason: 'full' });
    const a = queued.execute(hold(100));
    const b = queued.execute(hold(10));
    await clock.runAll();
    await Promise.all([running, a, b]);
    const spans = exporter.getFinishedSpans();
    const rejectedCall = named(spans, 'search call').find(
      (s) => s.attributes['bulwark.outcome'] === 'rejected',
    )!;
    expect(rejectedCall.status.code).toBe(SpanStatusCode.ERROR);
    expect(decisions(rejectedCall)).toEqual([
      ['bulwark.bulkhead.rejected', { 'bulwark.bulkhead.reason': 'full' }],
    ]);
    expect((refused as { traceId?: string }).traceId).toBe(rejectedCall.spanContext().traceId);
    const waited = named(spans, 'render call').find((s) => s.events.length > 0)!;
    expect(decisions(waited)).toEqual([
      ['bulwark.bulkhead.queued', { 'bulwark.bulkhead.queued': 1 }],
      ['bulwark.bulkhead.dequeued', { 'bulwark.bulkhead.wait_ms': 100 }],
    ]);
    expect(waited.attributes['bulwark.outcome']).toBe('success');
  });

  it('records a call the load shedder refused', async () => {
    const { tracerProvider, exporter } = sdk();
    const clock = virtualClock();
    const reports = dependency('reports', {
      clock,
      loadShedder: { limit: 1 },
      metrics: openTelemetry({ tracerProvider }),
    });
    const running = reports.execute(() => clock.sleep(50));
    const shed = await reports.execute(() => 1, { priority: 'low' }).catch((e: unknown) => e);
    expect(shed).toMatchObject({ code: 'ERR_LOAD_SHED' });
    await clock.runAll();
    await running;
    const call = named(exporter.getFinishedSpans(), 'reports call').find(
      (s) => s.attributes['bulwark.outcome'] === 'shed',
    )!;
    expect(call.attributes['bulwark.priority']).toBe('low');
    expect(call.status.code).toBe(SpanStatusCode.ERROR);
    expect(decisions(call)).toEqual([
      [
        'bulwark.shed',
        {
          'bulwark.shed.reason': (shed as { reason: string }).reason,
          'bulwark.priority': 'low',
        },
      ],
    ]);
    expect(named(exporter.getFinishedSpans(), 'reports attempt')).toHaveLength(1);
  });

  it('records an idempotent replay on a successful call', async () => {
    const { tracerProvider, exporter } = sdk();
    const clock = virtualClock();
    const charges = dependency('charges', {
      clock,
      idempotency: { store: new MemoryStore({ clock }) },
      metrics: openTelemetry({ tracerProvider }),
    });
    let runs = 0;
    const charge = () => ++runs;
    expect(await charges.execute(charge, { idempotencyKey: 'order-7' })).toBe(1);
    expect(await charges.execute(charge, { idempotencyKey: 'order-7' })).toBe(1);
    const [first, replay] = named(exporter.getFinishedSpans(), 'charges call');
    expect(eventNames(first!)).toEqual(['bulwark.idempotency.executed']);
    expect(eventNames(replay!)).toEqual(['bulwark.idempotency.replayed']);
    expect(replay!.status.code).toBe(SpanStatusCode.UNSET);
    expect(replay!.attributes['bulwark.attempts']).toBe(0);
    expect(named(exporter.getFinishedSpans(), 'charges attempt')).toHaveLength(1);
  });

  it('records a fallback: outcome fallback, status unset, the replaced rejection as an event', async () => {
    const { tracerProvider, exporter } = sdk();
    const clock = virtualClock();
    const recs = dependency('recs', {
      ...ONLY_CONFIGURED,
      clock,
      budget: 100,
      fallback: { value: [] },
      metrics: openTelemetry({ tracerProvider }),
    });
    const result = recs.execute(() => new Promise(() => {}));
    await clock.runAll();
    expect(await result).toEqual([]);
    const spans = exporter.getFinishedSpans();
    const call = one(spans, 'recs call');
    expect(call.attributes['bulwark.outcome']).toBe('fallback');
    expect(call.status.code).toBe(SpanStatusCode.UNSET);
    expect(decisions(call)).toEqual([['bulwark.fallback', { 'bulwark.fallback.kind': 'error' }]]);
    // The attempt that never answered is ended by the budget, not left open.
    const attempt = one(spans, 'recs attempt');
    expect(attempt.attributes['bulwark.outcome']).toBe('timeout');
    expect(attempt.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('stamps the trace id on a timeout and ends the attempt at its deadline', async () => {
    const { tracerProvider, exporter } = sdk();
    const clock = virtualClock();
    const slow = dependency('slow', {
      ...ONLY_CONFIGURED,
      clock,
      budget: 300,
      timeout: 100,
      metrics: openTelemetry({ tracerProvider }),
    });
    const result = slow.execute(() => new Promise(() => {})).catch((e: unknown) => e);
    await clock.runAll();
    const error = await result;
    expect(error).toBeInstanceOf(TimeoutError);
    const call = one(exporter.getFinishedSpans(), 'slow call');
    expect((error as { traceId?: string }).traceId).toBe(call.spanContext().traceId);
    expect(call.attributes['bulwark.outcome']).toBe('timeout');
    const attempt = one(exporter.getFinishedSpans(), 'slow attempt');
    expect(attempt.attributes['bulwark.attempt.timeout_ms']).toBe(100);
    expect(attempt.endTime[0] * 1e3 + attempt.endTime[1] / 1e6 - T0).toBe(100);
  });

  it('nests a dependency called inside another under the outer attempt', async () => {
    const { tracerProvider, exporter } = sdk();
    const otel = openTelemetry({ tracerProvider });
    const inner = dependency('inventory', { metrics: otel });
    const outer = dependency('checkout', { metrics: otel });
    await outer.execute(() => inner.execute(() => 'ok'));
    const spans = exporter.getFinishedSpans();
    const innerCall = one(spans, 'inventory call');
    const outerAttempt = one(spans, 'checkout attempt');
    expect(innerCall.parentSpanContext?.spanId).toBe(outerAttempt.spanContext().spanId);
    const innerAttempt = one(spans, 'inventory attempt');
    expect(innerAttempt.parentSpanContext?.spanId).toBe(innerCall.spanContext().spanId);
  });

  it('traces nothing for a call that is not sampled, and still runs it', async () => {
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({
      sampler: new AlwaysOffSampler(),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const dep = dependency('quiet', {
      retry: { maxAttempts: 2, backoff: 0 },
      metrics: openTelemetry({ tracerProvider }),
    });
    let runs = 0;
    await expect(
      dep.execute(() => {
        if (++runs === 1) throw http(503);
        return 'ok';
      }),
    ).resolves.toBe('ok');
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });

  it('with no SDK registered, records nothing and skips per-call work', async () => {
    const otel = openTelemetry();
    const recorder = otel.forDependency('plain');
    expect(recorder.enabled).toBe(false);
    const dep = dependency('plain', { metrics: otel, retry: { maxAttempts: 2, backoff: 0 } });
    let runs = 0;
    await expect(
      dep.execute(() => {
        if (++runs === 1) throw http(503);
        return 'ok';
      }),
    ).resolves.toBe('ok');
    await flush();
  });

  it('rejects bad options naming the path', () => {
    expect(() => openTelemetry({ tracerProvider: {} as never })).toThrow(
      /openTelemetry\.tracerProvider/,
    );
    expect(() => openTelemetry({ nope: 1 } as never)).toThrow(/openTelemetry\.nope/);
  });
});
