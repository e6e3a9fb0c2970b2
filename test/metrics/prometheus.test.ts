import { Registry, register as globalRegistry } from 'prom-client';
import * as promClient from 'prom-client';
import { describe, expect, it } from 'vitest';
import { prometheusMetrics } from '../../src/prometheus.js';
import { ConfigError } from '../../src/index.js';

/** Parses the exposition text strictly enough to catch malformed lines. */
export function parseExposition(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!m) throw new Error(`malformed exposition line: ${line}`);
    series.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return series;
}

describe('prometheusMetrics', () => {
  it('registers every metric of the table up front, with zeroed series per dependency', async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry });
    const payments = metrics.forDependency('payments');
    payments.observeCircuitState(() => 'closed');
    payments.observeBulkhead(() => ({ inFlight: 0, queued: 0 }));
    payments.observeConcurrencyLimit(() => 20);
    const text = await registry.metrics();
    const s = parseExposition(text);
    expect(s.get('bulwark_calls_total{dependency="payments",outcome="success"}')).toBe(0);
    expect(s.get('bulwark_calls_total{dependency="payments",outcome="short_circuited"}')).toBe(0);
    expect(s.get('bulwark_retries_total{dependency="payments",reason="timeout"}')).toBe(0);
    expect(s.get('bulwark_retry_budget_exhausted_total{dependency="payments"}')).toBe(0);
    expect(s.get('bulwark_circuit_state{dependency="payments",state="closed"}')).toBe(1);
    expect(s.get('bulwark_circuit_state{dependency="payments",state="open"}')).toBe(0);
    expect(
      s.get('bulwark_circuit_transitions_total{dependency="payments",from="closed",to="open"}'),
    ).toBe(0);
    expect(s.get('bulwark_bulkhead_in_flight{dependency="payments"}')).toBe(0);
    expect(s.get('bulwark_bulkhead_queued{dependency="payments"}')).toBe(0);
    expect(
      s.get('bulwark_load_shed_total{dependency="payments",priority="low",reason="capacity"}'),
    ).toBe(0);
    expect(s.get('bulwark_concurrency_limit{dependency="payments"}')).toBe(20);
    expect(
      s.get('bulwark_call_duration_seconds_count{dependency="payments",outcome="success"}'),
    ).toBe(0);
    for (const [name, type] of [
      ['bulwark_calls_total', 'counter'],
      ['bulwark_call_duration_seconds', 'histogram'],
      ['bulwark_retries_total', 'counter'],
      ['bulwark_retry_budget_exhausted_total', 'counter'],
      ['bulwark_circuit_state', 'gauge'],
      ['bulwark_circuit_transitions_total', 'counter'],
      ['bulwark_bulkhead_in_flight', 'gauge'],
      ['bulwark_bulkhead_queued', 'gauge'],
      ['bulwark_load_shed_total', 'counter'],
      ['bulwark_concurrency_limit', 'gauge'],
      ['bulwark_idempotency_total', 'counter'],
    ]) {
      expect(text).toContain(`# TYPE ${name} ${type}`);
    }
  });

  it('counts calls and observes durations in seconds into cumulative buckets', async () => {
    const registry = new Registry();
    const dep = prometheusMetrics({ registry, buckets: [0.1, 1] }).forDependency('search');
    dep.recordCall('success', 0.05);
    dep.recordCall('success', 0.5);
    dep.recordCall('success', 3);
    dep.recordCall('timeout', 1);
    const s = parseExposition(await registry.metrics());
    expect(s.get('bulwark_calls_total{dependency="search",outcome="success"}')).toBe(3);
    expect(s.get('bulwark_calls_total{dependency="search",outcome="timeout"}')).toBe(1);
    expect(
      s.get('bulwark_call_duration_seconds_bucket{dependency="search",outcome="success",le="0.1"}'),
    ).toBe(1);
    expect(
      s.get('bulwark_call_duration_seconds_bucket{dependency="search",outcome="success",le="1"}'),
    ).toBe(2);
    expect(
      s.get(
        'bulwark_call_duration_seconds_bucket{dependency="search",outcome="success",le="+Inf"}',
      ),
    ).toBe(3);
    expect(
      s.get('bulwark_call_duration_seconds_sum{dependency="search",outcome="success"}'),
    ).toBeCloseTo(3.55);
    expect(
      s.get('bulwark_call_duration_seconds_count{dependency="search",outcome="success"}'),
    ).toBe(3);
    expect(
      s.get('bulwark_call_duration_seconds_bucket{dependency="search",outcome="timeout",le="1"}'),
    ).toBe(1);
  });

  it('records retries, budget exhaustion, transitions, shedding and idempotency results', async () => {
    const registry = new Registry();
    const dep = prometheusMetrics({ registry }).forDependency('orders');
    dep.observeCircuitState(() => 'open');
    dep.observeConcurrencyLimit(() => 5);
    dep.recordRetry('status');
    dep.recordRetry('status');
    dep.recordRetryBudgetExhausted();
    dep.recordCircuitTransition('closed', 'open');
    dep.recordLoadShed('low', 'priority');
    dep.recordIdempotency('memory', 'replayed');
    const s = parseExposition(await registry.metrics());
    expect(s.get('bulwark_retries_total{dependency="orders",reason="status"}')).toBe(2);
    expect(s.get('bulwark_retry_budget_exhausted_total{dependency="orders"}')).toBe(1);
    expect(
      s.get('bulwark_circuit_transitions_total{dependency="orders",from="closed",to="open"}'),
    ).toBe(1);
    expect(s.get('bulwark_circuit_state{dependency="orders",state="open"}')).toBe(1);
    expect(
      s.get('bulwark_load_shed_total{dependency="orders",priority="low",reason="priority"}'),
    ).toBe(1);
    expect(
      s.get('bulwark_idempotency_total{dependency="orders",store="memory",result="replayed"}'),
    ).toBe(1);
    expect(
      s.get('bulwark_idempotency_total{dependency="orders",store="memory",result="executed"}'),
    ).toBe(0);
  });

  it('two registries do not collide, and a second call on one registry reuses the metrics', async () => {
    const a = new Registry();
    const b = new Registry();
    prometheusMetrics({ registry: a }).forDependency('x').recordCall('success', 0.01);
    prometheusMetrics({ registry: b }).forDependency('x').recordCall('failure', 0.01);
    const again = prometheusMetrics({ registry: a });
    again.forDependency('x').recordCall('success', 0.01);
    const sa = parseExposition(await a.metrics());
    const sb = parseExposition(await b.metrics());
    expect(sa.get('bulwark_calls_total{dependency="x",outcome="success"}')).toBe(2);
    expect(sb.get('bulwark_calls_total{dependency="x",outcome="success"}')).toBe(0);
    expect(sb.get('bulwark_calls_total{dependency="x",outcome="failure"}')).toBe(1);
  });

  it('uses the prefix, and a client to create a registry of its own, never the global one', async () => {
    const before = (await globalRegistry.metrics()).length;
    const m = prometheusMetrics({ client: promClient, prefix: 'svc_' });
    m.forDependency('db').recordCall('success', 0.001);
    const text = await (m.registry as Registry).metrics();
    expect(text).toContain('svc_calls_total{dependency="db",outcome="success"} 1');
    expect((await globalRegistry.metrics()).length).toBe(before);
  });

  it('renders OpenMetrics too', async () => {
    const registry = new Registry();
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never);
    prometheusMetrics({ registry }).forDependency('x').recordCall('success', 0.01);
    const text = await registry.metrics();
    expect(text).toContain('bulwark_calls_total{dependency="x",outcome="success"} 1');
    expect(text.trimEnd().endsWith('# EOF')).toBe(true);
  });

  it('rejects bad options naming them', () => {
    expect(() => prometheusMetrics({})).toThrow(ConfigError);
    expect(() => prometheusMetrics({})).toThrow(/prometheusMetrics\.registry/);
    expect(() => prometheusMetrics({ registry: new Registry(), prefix: 'bad-prefix' })).toThrow(
      /prometheusMetrics\.prefix/,
    );
    expect(() => prometheusMetrics({ registry: new Registry(), buckets: [1, 0.5] })).toThrow(
      /prometheusMetrics\.buckets/,
    );
  });
});
