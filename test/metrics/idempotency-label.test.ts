// bulwark_idempotency_total carries the dependency label, as every other series does
// (issue 12 item 18): two dependencies sharing a store are told apart.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { dependency } from '../../src/dependency.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { prometheusMetrics } from '../../src/prometheus.js';

describe('bulwark_idempotency_total', () => {
  it('is labelled by dependency, store and result', async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry });
    const store = new MemoryStore();
    const payments = dependency('payments', { idempotency: { store }, metrics });
    const refunds = dependency('refunds', { idempotency: { store }, metrics });
    await payments.execute(() => 1, { idempotencyKey: 'p1' });
    await payments.execute(() => 1, { idempotencyKey: 'p1' });
    await refunds.execute(() => 2, { idempotencyKey: 'r1' });
    const lines = (await registry.metrics()).split('\n');
    const at = (dep: string, result: string) => {
      const series = `bulwark_idempotency_total{dependency="${dep}",store="MemoryStore",result="${result}"} `;
      const line = lines.find((l) => l.startsWith(series));
      return line === undefined ? undefined : Number(line.slice(series.length));
    };
    expect(at('payments', 'executed')).toBe(1);
    expect(at('payments', 'replayed')).toBe(1);
    expect(at('refunds', 'executed')).toBe(1);
    expect(at('refunds', 'replayed')).toBe(0);
  });
});
