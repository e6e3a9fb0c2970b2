import { trace, type Tracer } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { dependency } from '../../src/index.js';
import { openTelemetry } from '../../src/otel.js';
import { VirtualClock } from '../../src/testing/index.js';
import { renderTree, sdk, useContextManager } from './otel-support.js';

useContextManager();

const http = (status: number, extra: object = {}): Error =>
  Object.assign(new Error(`HTTP ${status}`), { status, ...extra });

describe('openTelemetry traces', () => {
  it('renders a retried and hedged call', async () => {
    const { tracerProvider, exporter } = sdk();
    const clock = new VirtualClock();
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
      const span = user.startSpan(`POST /charge #${run}`);
      try {
        if (ctx.attempt < 3) {
          await clock.sleep(10);
          throw http(503, ctx.attempt === 2 ? { retryAfterMs: 150 } : {});
        }
        if (run === 5) {
          await clock.sleep(500, ctx.signal);
          return 'slow';
        }
        await clock.sleep(20);
        return 'charged';
      } finally {
        span.end();
      }
    });
    await clock.runAll();
    await expect(outcome).resolves.toBe('charged');
    console.log(renderTree(exporter.getFinishedSpans()));
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});
