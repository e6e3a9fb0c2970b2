import { trace } from '@opentelemetry/api';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dependency, isBulwarkError } from '../../src/index.js';
import { openTelemetry } from '../../src/otel.js';
import { VirtualClock } from '../../src/testing/index.js';
import { sdk, useContextManager } from './otel-support.js';

useContextManager();

const run = fc.record({
  kind: fc.constantFrom('ok', 'fail', 'hang'),
  latency: fc.integer({ min: 0, max: 120 }),
});
const call = fc.record({
  startAt: fc.integer({ min: 0, max: 200 }),
  runs: fc.array(run, { minLength: 1, maxLength: 6 }),
  abortAt: fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined }),
  priority: fc.constantFrom('critical', 'high', 'normal', 'low' as const),
});

describe('openTelemetry traces under faults', () => {
  it('ends every span it starts, parents every attempt on its call, and stamps every rejection', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(call, { minLength: 1, maxLength: 12 }),
        fc.boolean(),
        async (calls, withFallback) => {
          const { tracerProvider, exporter, counter } = sdk();
          const clock = new VirtualClock({ start: Date.UTC(2026, 0, 1) });
          const dep = dependency('flaky', {
            clock,
            budget: 300,
            timeout: 100,
            retry: { maxAttempts: 3, backoff: 10 },
            hedge: { delay: 30 },
            bulkhead: { maxConcurrent: 2, maxQueue: 2, queueTimeout: 50 },
            circuitBreaker: { consecutiveFailures: 4, halfOpenAfter: 100 },
            loadShedder: { limit: 6 },
            ...(withFallback ? { fallback: { value: 'fallback' } } : {}),
            metrics: openTelemetry({ tracerProvider }),
          });
          const outcomes = calls.map(async (c) => {
            await clock.sleep(c.startAt);
            const controller = new AbortController();
            if (c.abortAt !== undefined) clock.setTimeout(() => controller.abort(), c.abortAt);
            let i = 0;
            return dep
              .execute(
                async (ctx) => {
                  const r = c.runs[Math.min(i++, c.runs.length - 1)]!;
                  if (r.kind === 'hang') return new Promise<never>(() => {});
                  await clock.sleep(r.latency, ctx.signal);
                  if (r.kind === 'fail') throw Object.assign(new Error('503'), { status: 503 });
                  return 'ok';
                },
                { signal: controller.signal, priority: c.priority },
              )
              .then(
                () => undefined,
                (error: unknown) => error,
              );
          });
          await clock.runAll();
          const errors = await Promise.all(outcomes);
          await clock.runAll();

          expect(counter.open.size).toBe(0);
          expect(counter.ended).toBe(counter.started);
          const spans = exporter.getFinishedSpans();
          const callSpans = spans.filter((s) => s.name === 'flaky call');
          expect(callSpans).toHaveLength(calls.length);
          const callIds = new Set(callSpans.map((s) => s.spanContext().spanId));
          for (const s of spans.filter((x) => x.name === 'flaky attempt')) {
            expect(callIds.has(s.parentSpanContext!.spanId)).toBe(true);
            expect(s.attributes['bulwark.outcome']).toBeDefined();
          }
          for (const s of callSpans) expect(s.attributes['bulwark.outcome']).toBeDefined();
          const traceIds = new Set(callSpans.map((s) => s.spanContext().traceId));
          for (const error of errors) {
            if (isBulwarkError(error)) {
              expect(traceIds.has((error as { traceId?: string }).traceId!)).toBe(true);
            }
          }
          expect(trace.getActiveSpan()).toBeUndefined();
        },
      ),
      { numRuns: 60 },
    );
  });
});
