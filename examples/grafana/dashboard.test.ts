import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { prometheusMetrics } from '../../src/prometheus.js';

describe('examples/grafana dashboard', () => {
  it('queries only metrics that bulwark exports', async () => {
    const dashboard = JSON.parse(
      readFileSync(new URL('./bulwark-dashboard.json', import.meta.url), 'utf8'),
    ) as {
      panels: Array<{ targets: Array<{ expr: string }> }>;
    };
    const registry = new Registry();
    prometheusMetrics({ registry });
    const exported = new Set(
      registry.getMetricsAsArray().flatMap((m) => {
        const { name } = m as unknown as { name: string };
        return [name, `${name}_bucket`, `${name}_sum`, `${name}_count`];
      }),
    );
    const used = dashboard.panels.flatMap((p) =>
      p.targets.flatMap((t) => [...t.expr.matchAll(/\b(bulwark_[a-z_]+)/g)].map((m) => m[1]!)),
    );
    expect(used.length).toBeGreaterThan(10);
    for (const name of used) expect(exported, name).toContain(name);
  });
});
