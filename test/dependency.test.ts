import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ConfigError, TimeoutError, CircuitOpenError } from '../src/index.js';
import { dependency, dependencies } from '../src/dependency.js';
import { prometheusMetrics } from '../src/prometheus.js';
import { VirtualClock } from '../src/testing/index.js';
import { parseExposition } from './metrics/prometheus.test.js';

const fail = (status: number) => () => {
  throw Object.assign(new Error(`HTTP ${status}`), { status });
};

function configError(make: () => unknown): ConfigError {
  try {
    make();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('dependency()', () => {
  it('always has a budget (10 s) and an attempt timeout by default', async () => {
    const clock = new VirtualClock();
    const dep = dependency('search', { clock, retry: false });
    expect(dep.budget).toBe(10_000);
    expect(dep.timeout).toBe(10_000);
    const call = dep.execute(() => new Promise(() => {})).catch((e: unknown) => e);
    await clock.advance(10_000);
    expect(await call).toBeInstanceOf(TimeoutError);
  });

  it('shares the budget among attempts for the default attempt timeout', () => {
    const dep = dependency('search', { budget: '3s', retry: { maxAttempts: 3 } });
    expect(dep.timeout).toBe(1000);
  });

  it('builds only the configured parts, outer to inner in the standard order', () => {
    const dep = dependency('payments', {
      budget: 2000,
      timeout: 500,
      retry: { maxAttempts: 2 },
      circuitBreaker: { consecutiveFailures: 3 },
      bulkhead: { maxConcurrent: 4 },
      loadShedder: { limit: 10 },
      hedge: { delay: 100 },
      fallback: { value: 'cached' },
    });
    expect(dep.pipeline.policies.map((p) => p.kind)).toEqual([
      'fallback',
      'loadShedder',
      'budget',
      'retry',
      'circuitBreaker',
      'bulkhead',
      'timeout',
      'hedge',
    ]);
    expect(dep.breaker?.state).toBe('closed');
    expect(dep.bulkhead?.inFlight).toBe(0);
    const minimal = dependency('cache', {
      budget: 100,
      retry: false,
      circuitBreaker: false,
      loadShedder: false,
    });
    expect(minimal.pipeline.policies.map((p) => p.kind)).toEqual(['budget']);
  });

  it('Infinity must be written out, and then there is no budget', async () => {
    const dep = dependency('batch', {
      budget: 'Infinity',
      retry: false,
      circuitBreaker: false,
      loadShedder: false,
    });
    expect(dep.budget).toBe(Infinity);
    expect(dep.pipeline.policies).toHaveLength(0);
    expect(await dep.execute((ctx) => ctx.deadline)).toBe(Infinity);
  });

  it('runs retries, the breaker and the fallback together', async () => {
    const clock = new VirtualClock();
    const dep = dependency('inventory', {
      clock,
      retry: { maxAttempts: 2, backoff: 0 },
      circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: 1000, whileOpen: { wait: false } },
      fallback: { value: 'stale' },
    });
    let calls = 0;
    const fn = () => {
      calls++;
      return fail(503)();
    };
    expect(await dep.execute(fn)).toBe('stale');
    expect(calls).toBe(2);
    expect(dep.breaker?.state).toBe('open');
    expect(await dep.execute(fn)).toBe('stale');
    expect(calls).toBe(2);
  });

  it('reports every problem at once, with its path, the expectation and the value', () => {
    const e = configError(() =>
      dependency('payments', {
        budget: -1,
        timeout: 'soon',
        retry: { maxAttempts: -2 },
        circuitBreaker: { failureRate: 2 },
        bulkhead: { maxConcurrent: 0 },
      } as never),
    );
    const paths = e.problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'payments.budget',
        'payments.timeout',
        'payments.retry.maxAttempts',
        'payments.circuitBreaker.failureRate',
        'payments.bulkhead.maxConcurrent',
      ]),
    );
    expect(e.message).toContain('payments.retry.maxAttempts: expected integer ≥ 1, got -2');
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['unknown top-level key', { retries: 3 }, /^p\.retries: unknown option/m],
    ['negative budget', { budget: -5 }, /^p\.budget: expected a duration ≥ 1 ms/m],
    ['bad budget string', { budget: '10 parsecs' }, /^p\.budget: expected a duration/m],
    ['zero timeout', { timeout: 0 }, /^p\.timeout: expected a duration ≥ 1 ms/m],
    [
      'timeout above budget',
      { budget: 1000, timeout: 2000 },
      /^p\.timeout: expected an attempt timeout ≤ the budget \(1000 ms\), got 2000/m,
    ],
    ['retry not an object', { retry: 3 }, /^p\.retry: expected an options object, got 3/m],
    [
      'maxAttempts 0',
      { retry: { maxAttempts: 0 } },
      /^p\.retry\.maxAttempts: expected integer ≥ 1, got 0/m,
    ],
    [
      'unknown jitter',
      { retry: { backoff: { jitter: 'chaos' } } },
      /^p\.retry\.backoff\.jitter: expected 'full'/m,
    ],
    [
      'retry budget ratio > 1',
      { retry: { retryBudget: { ratio: 1.5 } } },
      /^p\.retry\.retryBudget\.ratio: expected number in \[0, 1\], got 1\.5/m,
    ],
    ['unknown retry key', { retry: { attempts: 2 } }, /^p\.retry\.attempts: unknown option/m],
    [
      'failure rate > 1',
      { circuitBreaker: { failureRate: 1.2, window: { calls: 10 } } },
      /^p\.circuitBreaker\.failureRate: /m,
    ],
    [
      'consecutiveFailures 0',
      { circuitBreaker: { consecutiveFailures: 0 } },
      /^p\.circuitBreaker\.consecutiveFailures: /m,
    ],
    [
      'half-open calls above the window',
      { circuitBreaker: { failureRate: 0.5, window: { calls: 5 }, halfOpenMaxCalls: 10 } },
      /^p\.circuitBreaker\.halfOpenMaxCalls: /m,
    ],
    [
      'bulkhead maxConcurrent 0',
      { bulkhead: { maxConcurrent: 0 } },
      /^p\.bulkhead\.maxConcurrent: expected integer ≥ 1, got 0/m,
    ],
    [
      'bulkhead negative queue',
      { bulkhead: { maxConcurrent: 1, maxQueue: -1 } },
      /^p\.bulkhead\.maxQueue: /m,
    ],
    ['load shedder negative limit', { loadShedder: { limit: -1 } }, /^p\.loadShedder\.limit: /m],
    [
      'unknown adaptive algorithm',
      { loadShedder: { limit: { algorithm: 'magic' } } },
      /^p\.loadShedder\.limit\.algorithm: /m,
    ],
    ['hedge negative delay', { hedge: { delay: -10 } }, /^p\.hedge\.delay: /m],
    [
      'fallback without value',
      { fallback: { on: () => true } },
      /^p\.fallback: expected \{ value, on\? \}/m,
    ],
    ['idempotency ttl negative', { idempotency: { ttl: -1 } }, /^p\.idempotency\.ttl: /m],
    ['metrics not a provider', { metrics: {} }, /^p\.metrics: expected a metrics provider/m],
  ])('ConfigError for %s names the path', (_name, config, message) => {
    const e = configError(() => dependency('p', config as never));
    expect(e.message).toMatch(message);
  });

  it('rejects a bad name', () => {
    expect(() => dependency('' as never)).toThrow(
      /dependency\(name\): expected a non-empty string/,
    );
  });
});

describe('dependency() errors name the dependency', () => {
  const never = () => new Promise<never>(() => {});
  // One attempt, no breaker wait: the message of the first timeout is what is checked.
  const single = { retry: false, circuitBreaker: false, loadShedder: false } as const;

  it('an attempt TimeoutError says which dependency timed out', async () => {
    const clock = new VirtualClock();
    const payments = dependency('payments', { ...single, clock, budget: '1s', timeout: 20 });
    const call = payments.execute(never).catch((e: unknown) => e);
    await clock.advance(20);
    const error = (await call) as TimeoutError;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.message).toBe('payments: attempt timed out after 20 ms');
    expect(error.dependency).toBe('payments');
  });

  it('a budget TimeoutError says which dependency ran out of time', async () => {
    const clock = new VirtualClock();
    const payments = dependency('payments', { ...single, clock, budget: 50 });
    const call = payments.execute(never).catch((e: unknown) => e);
    await clock.advance(50);
    expect(((await call) as Error).message).toBe(
      'payments: call exceeded its time budget of 50 ms',
    );
  });

  it('keeps the name of the inner dependency when one calls another', async () => {
    const clock = new VirtualClock();
    const ledger = dependency('ledger', { ...single, clock, budget: '1s', timeout: 10 });
    const payments = dependency('payments', { ...single, clock, budget: '1s', timeout: 500 });
    const call = payments.execute(() => ledger.execute(never)).catch((e: unknown) => e);
    await clock.advance(10);
    const error = (await call) as TimeoutError;
    expect(error.message).toBe('ledger: attempt timed out after 10 ms');
    expect(error.dependency).toBe('ledger');
  });

  it('an already-aborted caller signal with no reason of its own yields an AbortError naming what happened', async () => {
    const controller = new AbortController();
    controller.abort();
    const original = controller.signal.reason as Error;
    let ran = false;
    const error = (await dependency('payments')
      .execute(
        () => {
          ran = true;
        },
        { signal: controller.signal },
      )
      .catch((e: unknown) => e)) as Error;
    expect(ran).toBe(false);
    expect(error.name).toBe('AbortError');
    expect(error.message).toBe(
      "payments: the caller's signal was already aborted; the call was not started",
    );
    expect(error.cause).toBe(original);
  });

  it('an already-aborted caller signal with its own reason rejects with that reason, unchanged', async () => {
    const controller = new AbortController();
    const reason = new Error('request closed');
    controller.abort(reason);
    await expect(
      dependency('payments').execute(() => 1, { signal: controller.signal }),
    ).rejects.toBe(reason);
  });
});

describe('dependencies()', () => {
  it('builds many from one plain object, merging defaults section by section', () => {
    const deps = dependencies({
      defaults: { budget: '2s', retry: { maxAttempts: 2, backoff: 50 } },
      payments: { retry: { maxAttempts: 4 }, circuitBreaker: { consecutiveFailures: 5 } },
      search: { budget: '500ms' },
    });
    expect(deps.payments.budget).toBe(2000);
    expect(deps.payments.retry?.maxAttempts).toBe(4);
    expect(deps.search.budget).toBe(500);
    expect(deps.search.retry?.maxAttempts).toBe(2);
    expect(deps.payments.breaker?.state).toBe('closed');
    const off = dependencies({ defaults: { circuitBreaker: false }, search: {} });
    expect(off.search.breaker).toBeUndefined();
  });

  it('checks the defaults by themselves, once, even where every dependency overrides them', () => {
    const e = configError(() =>
      dependencies({
        defaults: { retry: { maxAttempts: 0 }, hedge: {} },
        a: { retry: false, hedge: { delay: 10 } },
        b: { retry: false, hedge: { delay: 20 } },
      } as never),
    );
    expect(e.problems.map((p) => p.path)).toEqual([
      'defaults.retry.maxAttempts',
      'defaults.hedge.delay',
    ]);
  });

  it('lets a defaults timeout exceed the default budget when each dependency sets its own', () => {
    const deps = dependencies({ defaults: { timeout: '20s' }, a: { budget: '30s' } });
    expect(deps.a.timeout).toBe(20_000);
  });

  it('refuses unknown keys in fallback', () => {
    const e = configError(() => dependency('p', { fallback: { value: 1, oops: 2 } } as never));
    expect(e.message).toMatch(/^p\.fallback\.oops: unknown option/m);
  });

  it('reports a bad default once, under defaults, not under each dependency that inherits it', () => {
    const e = configError(() =>
      dependencies({
        defaults: { budget: 'soon', retry: { maxAttempts: 0 } },
        a: {},
        b: {},
      } as never),
    );
    expect(e.problems.map((p) => p.path).sort()).toEqual([
      'defaults.budget',
      'defaults.retry.maxAttempts',
    ]);
  });

  it('refuses a __proto__ dependency name from JSON instead of making it the prototype', () => {
    const config = JSON.parse('{"__proto__": {"budget": "1s"}, "payments": {}}') as never;
    const e = configError(() => dependencies(config));
    expect(e.problems.map((p) => p.path)).toEqual(['__proto__']);
    expect(e.message).toMatch(/^__proto__: /m);
  });

  it('refuses a __proto__ key inside a section, from JSON or from an object literal', () => {
    const parsed = JSON.parse('{"payments": {"__proto__": {"budget": "1s"}}}') as never;
    expect(configError(() => dependencies(parsed)).problems.map((p) => p.path)).toEqual([
      'payments.__proto__',
    ]);
    const literal = { payments: { __proto__: { budget: '1s' } } } as never;
    expect(configError(() => dependencies(literal)).problems.map((p) => p.path)).toEqual([
      'payments',
    ]);
    const nested = JSON.parse(
      '{"payments": {"retry": {"__proto__": {"maxAttempts": 9}}}}',
    ) as never;
    expect(configError(() => dependencies(nested)).problems.map((p) => p.path)).toEqual([
      'payments.retry.__proto__',
    ]);
    expect(() => dependency('p', { retry: { __proto__: { maxAttempts: 9 } } } as never)).toThrow(
      /^p\.retry: /m,
    );
  });

  it('reports the problems of every dependency in one error', () => {
    const e = configError(() =>
      dependencies({ a: { budget: -1 }, b: { retry: { maxAttempts: 0 } }, c: 5 } as never),
    );
    expect(e.problems.map((p) => p.path)).toEqual(['a.budget', 'b.retry.maxAttempts', 'c']);
  });
});

describe('dependency metrics', () => {
  it('every metric moves exactly as the events dictate', async () => {
    const clock = new VirtualClock();
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry });
    const dep = dependency('pay', {
      clock,
      metrics,
      retry: { maxAttempts: 3, backoff: 10 },
      circuitBreaker: { consecutiveFailures: 3, halfOpenAfter: 1000, whileOpen: { wait: false } },
      bulkhead: { maxConcurrent: 2 },
    });
    let s = parseExposition(await registry.metrics());
    expect(s.get('bulwark_circuit_state{dependency="pay",state="closed"}')).toBe(1);
    expect(s.get('bulwark_calls_total{dependency="pay",outcome="success"}')).toBe(0);

    await dep.execute(() => 'ok');
    const failing = dep.execute(fail(503)).catch((e: unknown) => e);
    await clock.runAll();
    await failing;
    const rejected = await dep.execute(() => 'never runs').catch((e: unknown) => e);
    expect(rejected).toBeInstanceOf(CircuitOpenError);

    s = parseExposition(await registry.metrics());
    expect(s.get('bulwark_calls_total{dependency="pay",outcome="success"}')).toBe(1);
    expect(s.get('bulwark_calls_total{dependency="pay",outcome="failure"}')).toBe(1);
    expect(s.get('bulwark_calls_total{dependency="pay",outcome="short_circuited"}')).toBe(1);
    expect(s.get('bulwark_retries_total{dependency="pay",reason="status"}')).toBe(2);
    expect(
      s.get('bulwark_circuit_transitions_total{dependency="pay",from="closed",to="open"}'),
    ).toBe(1);
    expect(s.get('bulwark_circuit_state{dependency="pay",state="open"}')).toBe(1);
    expect(s.get('bulwark_circuit_state{dependency="pay",state="closed"}')).toBe(0);
    expect(s.get('bulwark_bulkhead_in_flight{dependency="pay"}')).toBe(0);
    expect(s.get('bulwark_bulkhead_queued{dependency="pay"}')).toBe(0);
    expect(s.get('bulwark_call_duration_seconds_count{dependency="pay",outcome="failure"}')).toBe(
      1,
    );
    // 2 retries × 10 ms of backoff on the virtual clock
    expect(
      s.get('bulwark_call_duration_seconds_sum{dependency="pay",outcome="failure"}'),
    ).toBeCloseTo(0.02);
  });

  it('counts a fallback as its own outcome', async () => {
    const registry = new Registry();
    const dep = dependency('x', {
      metrics: prometheusMetrics({ registry }),
      fallback: { value: 0 },
    });
    expect(await dep.execute(fail(400))).toBe(0);
    const s = parseExposition(await registry.metrics());
    expect(s.get('bulwark_calls_total{dependency="x",outcome="fallback"}')).toBe(1);
    expect(s.get('bulwark_calls_total{dependency="x",outcome="failure"}')).toBe(0);
  });

  it('10,000 calls with distinct idempotency keys and URLs create no new series', async () => {
    const registry = new Registry();
    const dep = dependency('api', {
      metrics: prometheusMetrics({ registry }),
      retry: { maxAttempts: 1 },
    });
    await dep.execute(() => 1);
    const before = parseExposition(await registry.metrics()).size;
    for (let i = 0; i < 10_000; i++) {
      const url = `https://api.example/items/${i}?q=${i}`;
      await dep
        .execute(() => (i % 3 === 0 ? Promise.reject(new Error(url)) : url), {
          idempotencyKey: `key-${i}`,
        })
        .catch(() => {});
    }
    const after = parseExposition(await registry.metrics());
    expect(after.size).toBe(before);
    const text = await registry.metrics();
    expect(text).not.toContain('key-');
    expect(text).not.toContain('example');
  });
});
