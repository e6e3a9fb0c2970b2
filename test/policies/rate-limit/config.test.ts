import { Ajv2020 } from 'ajv/dist/2020.js';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  RateLimitError,
  RateLimitPolicy,
  dependency,
  dependencyConfigSchema,
} from '../../../src/index.js';
import { prometheusMetrics } from '../../../src/prometheus.js';
import { VirtualClock } from '../../../src/testing/index.js';

/** Series name (with labels) → value, from the exposition text. */
function parseExposition(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    series.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return series;
}

describe('rateLimit in dependency() config', () => {
  it('builds a rate limit named after the dependency, inside the breaker and outside the bulkhead', () => {
    const dep = dependency('payments', {
      retry: { maxAttempts: 2 },
      circuitBreaker: { consecutiveFailures: 3 },
      rateLimit: { rate: 100, per: '1s', burst: 5, wait: '50ms' },
      bulkhead: { maxConcurrent: 4 },
    });
    expect(dep.rateLimit).toBeInstanceOf(RateLimitPolicy);
    expect(dep.rateLimit!.name).toBe('payments');
    expect(dep.rateLimit!.maxWait).toBe(50);
    const kinds = dep.pipeline.policies.map((p) => p.kind);
    expect(kinds.indexOf('circuit-breaker')).toBeLessThan(kinds.indexOf('rate-limit'));
    expect(kinds.indexOf('rate-limit')).toBeLessThan(kinds.indexOf('bulkhead'));
    expect(kinds.indexOf('retry')).toBeLessThan(kinds.indexOf('rate-limit'));
  });

  it('names the path of a bad rateLimit option', () => {
    expect(() => dependency('payments', { rateLimit: { rate: 0 } })).toThrow(ConfigError);
    expect(() => dependency('payments', { rateLimit: { rate: 0 } })).toThrow(
      'payments.rateLimit.rate: expected a number > 0, got 0',
    );
    expect(() => dependency('payments', { rateLimit: { rate: 1, wait: -1 } as never })).toThrow(
      'payments.rateLimit.wait',
    );
    expect(() => dependency('payments', { rateLimit: 5 as never })).toThrow(
      'payments.rateLimit: expected an options object, got 5',
    );
  });

  it('is described by the JSON Schema', () => {
    const validate = new Ajv2020({ strict: false }).compile(dependencyConfigSchema);
    expect(
      validate({ payments: { rateLimit: { rate: 100, per: '1s', burst: 10, wait: '250ms' } } }),
    ).toBe(true);
    expect(validate({ payments: { rateLimit: { rate: 5, pauseOn429: true } } })).toBe(true);
    expect(validate({ payments: { rateLimit: { rate: 0 } } })).toBe(false);
    expect(validate({ payments: { rateLimit: { per: '1s' } } })).toBe(false);
    expect(validate({ payments: { rateLimit: { rate: 1, typo: 1 } } })).toBe(false);
  });

  it('counts refusals as rejected calls and records paced waits in Prometheus', async () => {
    const clock = new VirtualClock();
    const registry = new Registry();
    const dep = dependency('quota', {
      clock,
      budget: 'Infinity',
      rateLimit: { rate: 10, wait: '150ms' },
      metrics: prometheusMetrics({ registry }),
    });
    let s = parseExposition(await registry.metrics());
    expect(s.get('bulwark_rate_limited_total{dependency="quota"}')).toBe(0);
    await dep.execute(() => 1);
    const paced = dep.execute(() => 2);
    await expect(dep.execute(() => 3)).rejects.toBeInstanceOf(RateLimitError);
    await clock.advance(100);
    await paced;
    s = parseExposition(await registry.metrics());
    expect(s.get('bulwark_rate_limited_total{dependency="quota"}')).toBe(1);
    expect(s.get('bulwark_calls_total{dependency="quota",outcome="rejected"}')).toBe(1);
    expect(s.get('bulwark_rate_limit_wait_seconds_count{dependency="quota"}')).toBe(1);
    expect(s.get('bulwark_rate_limit_wait_seconds_sum{dependency="quota"}')).toBeCloseTo(0.1);
    expect(s.get('bulwark_rate_limit_wait_seconds_bucket{dependency="quota",le="0.05"}')).toBe(0);
    expect(s.get('bulwark_rate_limit_wait_seconds_bucket{dependency="quota",le="0.1"}')).toBe(1);
  });
});
