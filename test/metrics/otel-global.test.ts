import { trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { dependency } from '../../src/index.js';
import { openTelemetry } from '../../src/otel.js';
import { sdk, useContextManager } from './otel-support.js';

useContextManager();
afterEach(() => trace.disable());

describe('openTelemetry with the global tracer provider', () => {
  it('starts tracing once an SDK is registered after the dependency was built', async () => {
    const otel = openTelemetry();
    const dep = dependency('late', { metrics: otel });
    expect(otel.forDependency('late').enabled).toBe(false);
    await dep.execute(() => 1);

    const { tracerProvider, exporter } = sdk();
    expect(trace.setGlobalTracerProvider(tracerProvider)).toBe(true);
    expect(otel.forDependency('late').enabled).toBe(true);
    await dep.execute(() => 2);
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['late attempt', 'late call']);
  });
});
