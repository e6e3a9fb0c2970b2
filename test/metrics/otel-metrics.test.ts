import type { MetricData } from '@opentelemetry/sdk-metrics';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { dependency, type DependencyConfig, type MetricsProvider } from '../../src/index.js';
import { openTelemetry } from '../../src/otel.js';
import { prometheusMetrics } from '../../src/prometheus.js';
import { VirtualClock } from '../../src/testing/index.js';
import { sdk } from './otel-support.js';

const config: DependencyConfig = {
  budget: 1000,
  timeout: 100,
  retry: { maxAttempts: 2, backoff: 5 },
  circuitBreaker: { consecutiveFailures: 6, halfOpenAfter: 200, whileOpen: { wait: false } },
  bulkhead: { maxConcurrent: 3 },
  loadShedder: { limit: 4 },
};

/** The same run, call for call, against whichever metrics backend. */
async function scenario(metrics: MetricsProvider): Promise<void> {
  const clock = new VirtualClock({ start: Date.UTC(2026, 0, 1) });
  const dep = dependency('payments', { ...config, clock, metrics });
  const fallbackDep = dependency('recs', {
    clock,
    fallback: { value: [] },
    retry: false,
    circuitBreaker: false,
    loadShedder: false,
    metrics,
  });
  const results: Promise<unknown>[] = [];
  for (let i = 0; i < 40; i++) {
    const kind = i % 5;
    results.push(
      dep
        .execute(
          async (ctx) => {
            if (kind === 0) return new Promise(() => {}); // hangs: attempt timeouts
            await clock.sleep(10 + (i % 7), ctx.signal);
            if (kind === 1 || (kind === 2 && ctx.attempt === 1)) {
              throw Object.assign(new Error('503'), { status: 503 });
            }
            return i;
          },
          { priority: i % 3 === 0 ? 'low' : 'normal' },
        )
        .catch(() => undefined),
    );
    results.push(fallbackDep.execute(() => Promise.reject(new Error('down'))));
    if (i % 4 === 3) await clock.advance(20);
  }
  await clock.runAll();
  await Promise.all(results);
}

/** Series name with labels -> value, from the text exposition format. */
function parseExposition(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m) series.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return series;
}

function otelPoints(metrics: MetricData[], name: string): Map<string, number> {
  const out = new Map<string, number>();
  const metric = metrics.find((m) => m.descriptor.name === name);
  for (const p of metric?.dataPoints ?? []) {
    const key = Object.values(p.attributes).join('/');
    const v = p.value as number | { count: number };
    out.set(key, typeof v === 'number' ? v : v.count);
  }
  return out;
}

function promPoints(
  series: Map<string, number>,
  name: string,
  labels: string[],
): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, value] of series) {
    const m = /^([^{]+)\{(.*)\}$/.exec(key);
    if (!m || m[1] !== name) continue;
    const pairs = Object.fromEntries(
      [...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]),
    );
    if (value === 0 && !name.endsWith('_state')) continue;
    out.set(labels.map((l) => pairs[l]).join('/'), value);
  }
  return out;
}

describe('openTelemetry metrics', () => {
  it('match the Prometheus recorder for the same run, outcome by outcome', async () => {
    const registry = new Registry();
    await scenario(prometheusMetrics({ registry }));
    const prom = parseExposition(await registry.metrics());

    const { meterProvider, reader } = sdk();
    await scenario(openTelemetry({ meterProvider, traces: false }));
    const { resourceMetrics } = await reader.collect();
    const otel = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);

    const calls = otelPoints(otel, 'bulwark.calls');
    expect(calls).toEqual(promPoints(prom, 'bulwark_calls_total', ['dependency', 'outcome']));
    // Every outcome this run can produce is present: the comparison is not vacuous.
    expect([...calls.keys()].sort()).toEqual([
      'payments/failure',
      'payments/shed',
      'payments/short_circuited',
      'payments/success',
      'payments/timeout',
      'recs/fallback',
    ]);
    expect(otelPoints(otel, 'bulwark.call.duration')).toEqual(
      promPoints(prom, 'bulwark_call_duration_seconds_count', ['dependency', 'outcome']),
    );
    expect(otelPoints(otel, 'bulwark.retries')).toEqual(
      promPoints(prom, 'bulwark_retries_total', ['dependency', 'reason']),
    );
    expect(otelPoints(otel, 'bulwark.load_shed')).toEqual(
      promPoints(prom, 'bulwark_load_shed_total', ['dependency', 'priority', 'reason']),
    );
    expect(otelPoints(otel, 'bulwark.circuit.state')).toEqual(
      promPoints(prom, 'bulwark_circuit_state', ['dependency', 'state']),
    );
    expect(otelPoints(otel, 'bulwark.bulkhead.in_flight')).toEqual(new Map([['payments', 0]]));
    expect(otelPoints(otel, 'bulwark.concurrency_limit')).toEqual(new Map([['payments', 4]]));
    const duration = otel.find((m) => m.descriptor.name === 'bulwark.call.duration')!;
    expect(duration.descriptor.unit).toBe('s');
  });
});
