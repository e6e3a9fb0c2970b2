import { Ajv2020 } from 'ajv/dist/2020.js';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dependencyConfigSchema } from '../../src/index.js';
import { startFaultServer, type FaultServer } from '../demo/fault-server.js';
import { parseExposition } from '../../test/metrics/prometheus.test.js';
import { startMetricsServer, type MetricsServer } from './server.js';

let inventory: FaultServer;
let pricing: FaultServer;
let service: MetricsServer;

beforeAll(async () => {
  inventory = await startFaultServer();
  pricing = await startFaultServer();
  service = await startMetricsServer({ inventory: inventory.url, pricing: pricing.url });
});

afterAll(async () => {
  await service.close();
  await inventory.close();
  await pricing.close();
});

async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`${service.url}/metrics`);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return parseExposition(await res.text());
}

describe('examples/metrics-server', () => {
  it('its config file passes the exported JSON Schema', () => {
    const config = JSON.parse(readFileSync(new URL('./config.json', import.meta.url), 'utf8'));
    const validate = new Ajv2020({ strict: false }).compile(dependencyConfigSchema);
    expect(validate(config), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ payments: { retry: { maxAttempts: 'three' } } })).toBe(false);
    expect(validate({ payments: { retries: 3 } })).toBe(false);
  });

  it('shows zeroed series for every configured dependency right after start-up', async () => {
    const s = await scrape();
    expect(s.get('bulwark_calls_total{dependency="inventory",outcome="success"}')).toBe(0);
    expect(s.get('bulwark_calls_total{dependency="pricing",outcome="fallback"}')).toBe(0);
    expect(s.get('bulwark_circuit_state{dependency="inventory",state="closed"}')).toBe(1);
    expect(s.get('bulwark_bulkhead_in_flight{dependency="inventory"}')).toBe(0);
  });

  it('counters move as the injected faults dictate', async () => {
    // Two 503s then success: inventory and pricing (2 attempts) differ.
    const res = await fetch(`${service.url}/product?id=a&fail=2`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { stock: unknown; price: { stale?: boolean } };
    expect(body.price).toEqual({ price: null, stale: true }); // pricing gave up after 2 attempts: fallback
    const s = await scrape();
    expect(s.get('bulwark_calls_total{dependency="inventory",outcome="success"}')).toBe(1);
    expect(s.get('bulwark_retries_total{dependency="inventory",reason="status"}')).toBe(2);
    expect(s.get('bulwark_calls_total{dependency="pricing",outcome="fallback"}')).toBe(1);
    expect(s.get('bulwark_retries_total{dependency="pricing",reason="status"}')).toBe(1);
    expect(
      s.get('bulwark_call_duration_seconds_count{dependency="inventory",outcome="success"}'),
    ).toBe(1);

    // A slow dependency: every attempt times out (inventory 300 ms, pricing 150 ms).
    const slow = await fetch(`${service.url}/product?latency=1000`);
    expect(slow.status).toBe(502);
    const t = await scrape();
    expect(
      t.get('bulwark_retries_total{dependency="inventory",reason="timeout"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(t.get('bulwark_calls_total{dependency="inventory",outcome="timeout"}')).toBe(1);
    expect(t.get('bulwark_bulkhead_in_flight{dependency="inventory"}')).toBe(0);
  });
});
