import fc from 'fast-check';
import type { DependencyConfig } from '../dependency.js';
import type { AdaptiveOptions } from '../policies/load-shedder/limits/adaptive.js';
import type { FaultyDependencyOptions, LatencyOption, Outage, Slowdown } from './fault-types.js';

/**
 * fast-check arbitraries for fault schedules and dependency configs. Every value they
 * produce is accepted by `faultyDependency()` / `dependency()` (a test checks it), and
 * every number is bounded, so a run stays short on a VirtualClock. They produce plain
 * data only (no functions, no clock): add `clock`, and a seeded `retry.random` if you want
 * jitter to replay too.
 */

/** The data part of `faultyDependency()` options. */
export type FaultSchedule = Pick<
  FaultyDependencyOptions,
  'latency' | 'failureRate' | 'hangs' | 'outages' | 'slowdowns'
> & { seed: number };

/** Options of `faultScheduleArb()`: bounds on what it generates. */
export interface FaultScheduleArbOptions {
  /** Outages and slowdowns start within [0, horizon) ms (default 60 000). */
  horizon?: number;
  /** Constant and uniform latencies stay ≤ this; log-normal p99 too (default 1 000). */
  maxLatency?: number;
  /** Highest failure rate, in and out of slowdowns (default 1). */
  maxFailureRate?: number;
  /** Highest hang rate (default 0.1). */
  maxHangRate?: number;
  /** Most outages, and most slowdowns (default 2 each). */
  maxWindows?: number;
}

/** A rate: 0 one time in four, else uniform in [0, max]. */
function rateArb(max: number): fc.Arbitrary<number> {
  if (max <= 0) return fc.constant(0);
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(0) },
    { weight: 3, arbitrary: fc.double({ min: 0, max, noNaN: true }) },
  );
}

function latencyArb(maxLatency: number): fc.Arbitrary<LatencyOption> {
  const max = Math.max(1, Math.floor(maxLatency));
  const ms = fc.integer({ min: 0, max });
  return fc.oneof(
    ms,
    fc.tuple(ms, ms).map(([a, b]) => ({ min: Math.min(a, b), max: Math.max(a, b) })),
    fc
      .tuple(fc.integer({ min: 1, max }), fc.integer({ min: 1, max }))
      .map(([a, b]) => ({ p50: Math.min(a, b), p99: Math.max(a, b) })),
  );
}

function windowArb(horizon: number): fc.Arbitrary<{ from: number; to: number }> {
  const h = Math.max(1, Math.floor(horizon));
  return fc
    .tuple(fc.integer({ min: 0, max: h - 1 }), fc.integer({ min: 1, max: h }))
    .map(([from, length]) => ({ from, to: from + length }));
}

/**
 * Fault schedules for `faultyDependency()`: a latency distribution (constant, uniform or
 * log-normal), failure and hang rates, up to `maxWindows` outages (some of them black
 * holes that hang) and slowdowns, and a seed.
 *
 * @example
 * ```ts
 * import fc from 'fast-check';
 * import { dependency } from 'bulwark';
 * import { VirtualClock, faultyDependency } from 'bulwark/testing';
 * import { faultScheduleArb } from 'bulwark/testing/arbitraries';
 *
 * // Whatever the faults, a 2 s budget ends every call within 2 s.
 * const endsInTime = fc.asyncProperty(faultScheduleArb(), async (faults) => {
 *   const clock = new VirtualClock();
 *   const downstream = faultyDependency({ ...faults, clock });
 *   const dep = dependency('inventory', { clock, budget: '2s', retry: {} });
 *   let settled = false;
 *   const done = () => (settled = true);
 *   dep.execute(downstream.call).then(done, done);
 *   await clock.advance(2_000);
 *   return settled;
 * });
 * await fc.assert(endsInTime);
 * ```
 */
export function faultScheduleArb(
  options: FaultScheduleArbOptions = {},
): fc.Arbitrary<FaultSchedule> {
  const horizon = options.horizon ?? 60_000;
  const maxLatency = options.maxLatency ?? 1_000;
  const maxFailureRate = options.maxFailureRate ?? 1;
  const maxWindows = options.maxWindows ?? 2;
  const outage: fc.Arbitrary<Outage> = fc
    .tuple(
      windowArb(horizon),
      fc.option(fc.integer({ min: 0, max: Math.max(0, Math.floor(maxLatency)) }), {
        nil: undefined,
      }),
      fc.boolean(),
    )
    .map(([w, latency, hang]) => ({
      ...w,
      ...(latency === undefined ? {} : { latency }),
      ...(hang ? { hang } : {}),
    }));
  const slowdown: fc.Arbitrary<Slowdown> = fc
    .tuple(
      windowArb(horizon),
      fc.double({ min: 1, max: 20, noNaN: true }),
      fc.option(rateArb(maxFailureRate), { nil: undefined }),
    )
    .map(([w, factor, failureRate]) => ({
      ...w,
      factor,
      ...(failureRate === undefined ? {} : { failureRate }),
    }));
  return fc.record({
    latency: latencyArb(maxLatency),
    failureRate: rateArb(maxFailureRate),
    hangs: rateArb(options.maxHangRate ?? 0.1),
    outages: fc.array(outage, { maxLength: maxWindows }),
    slowdowns: fc.array(slowdown, { maxLength: maxWindows }),
    seed: fc.nat(),
  });
}

// ---------------------------------------------------------------------------------------

/** A part of a dependency's config that `dependencyConfigArb()` may include. */
export type DependencyPart =
  'retry' | 'circuitBreaker' | 'bulkhead' | 'loadShedder' | 'hedge' | 'fallback' | 'idempotency';

/** Options of `dependencyConfigArb()`: bounds on what it generates. */
export interface DependencyConfigArbOptions {
  /** Budgets lie in [1, maxBudget] ms (default 10 000); every config has one. */
  maxBudget?: number;
  /**
   * Parts that may appear (each in about half the configs). Default: all of them. Set a
   * part to false to leave it out, e.g. `{ idempotency: false }`.
   */
  parts?: Partial<Record<DependencyPart, boolean>>;
}

const ms = (min: number, max: number) => fc.integer({ min, max });
const share = fc.double({ min: 0.01, max: 1, noNaN: true });

/** `{ initial, multiplier, max }` with max ≥ initial. */
function growingArb(maxInitial: number, maxExtra: number) {
  return fc
    .record({
      initial: ms(0, maxInitial),
      multiplier: fc.double({ min: 1, max: 3, noNaN: true }),
      extra: ms(0, maxExtra),
    })
    .map(({ initial, multiplier, extra }) => ({ initial, multiplier, max: initial + extra }));
}

const retryArb: fc.Arbitrary<NonNullable<DependencyConfig['retry']>> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(false as const) },
  {
    weight: 6,
    arbitrary: fc.record(
      {
        maxAttempts: fc.integer({ min: 1, max: 4 }),
        backoff: fc.oneof(
          ms(0, 500),
          fc
            .tuple(
              growingArb(200, 2_000),
              fc.constantFrom(
                'full' as const,
                'equal' as const,
                'decorrelated' as const,
                'none' as const,
              ),
            )
            .map(([g, jitter]) => ({ ...g, jitter })),
        ),
        minAttemptTime: ms(0, 50),
        retryBudget: fc.record(
          {
            ratio: fc.double({ min: 0, max: 1, noNaN: true }),
            minPerSecond: fc.double({ min: 0, max: 20, noNaN: true }),
            window: ms(100, 20_000),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    ),
  },
);

const halfOpenArb = fc.record(
  {
    halfOpenAfter: fc.oneof(ms(0, 30_000), growingArb(5_000, 30_000)),
    halfOpenSuccesses: fc.integer({ min: 1, max: 3 }),
    halfOpenTimeout: ms(1, 30_000),
  },
  { requiredKeys: [] },
);

const slowCallArb = fc.option(
  fc.record({ ms: ms(0, 5_000), rate: fc.double({ min: 0, max: 1, noNaN: true }) }),
  { nil: undefined, freq: 2 },
);

type BreakerConfig = NonNullable<DependencyConfig['circuitBreaker']>;

const breakerArb: fc.Arbitrary<BreakerConfig> = fc.oneof(
  // Consecutive failures (or none given: the default rule).
  fc
    .tuple(
      fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
      fc.integer({ min: 1, max: 3 }),
      halfOpenArb,
    )
    .map(([consecutiveFailures, halfOpenMaxCalls, h]) => ({
      ...(consecutiveFailures === undefined ? {} : { consecutiveFailures }),
      halfOpenMaxCalls,
      ...h,
    })),
  // A failure rate over the last `calls` outcomes: minimumCalls and halfOpenMaxCalls ≤ calls.
  fc.integer({ min: 1, max: 20 }).chain((calls) =>
    fc
      .tuple(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: calls }),
        fc.integer({ min: 1, max: Math.min(3, calls) }),
        slowCallArb,
        halfOpenArb,
      )
      .map(([failureRate, minimumCalls, halfOpenMaxCalls, slowCall, h]) => ({
        failureRate,
        window: { calls },
        minimumCalls,
        halfOpenMaxCalls,
        ...(slowCall === undefined ? {} : { slowCall }),
        ...h,
      })),
  ),
  // A failure rate over the last `ms`, in buckets.
  fc
    .tuple(
      fc.double({ min: 0, max: 1, noNaN: true }),
      ms(100, 20_000),
      fc.integer({ min: 1, max: 10 }),
      fc.integer({ min: 1, max: 20 }),
      fc.integer({ min: 1, max: 3 }),
      slowCallArb,
      halfOpenArb,
    )
    .map(([failureRate, windowMs, buckets, minimumCalls, halfOpenMaxCalls, slowCall, h]) => ({
      failureRate,
      window: { ms: windowMs, buckets },
      minimumCalls,
      halfOpenMaxCalls,
      ...(slowCall === undefined ? {} : { slowCall }),
      ...h,
    })),
);

const bulkheadArb: fc.Arbitrary<NonNullable<DependencyConfig['bulkhead']>> = fc.record(
  {
    maxConcurrent: fc.integer({ min: 1, max: 8 }),
    maxQueue: fc.integer({ min: 0, max: 8 }),
    queueTimeout: ms(0, 5_000),
  },
  { requiredKeys: ['maxConcurrent'] },
);

const adaptiveArb = fc
  .tuple(
    fc.constantFrom('gradient' as const, 'aimd' as const, 'vegas' as const),
    fc.integer({ min: 1, max: 20 }),
    fc.integer({ min: 1, max: 20 }),
    fc.integer({ min: 1, max: 20 }),
  )
  .map(([algorithm, a, b, c]) => {
    const [min, initial, max] = [a, b, c].sort((x, y) => x - y) as [number, number, number];
    // Typed as the union member of its algorithm (a union of literals is not one).
    return { algorithm, min, initial, max } as AdaptiveOptions;
  });

// No maxEventLoopDelay: it reads the real event loop, which no VirtualClock controls.
const loadShedderArb: fc.Arbitrary<NonNullable<DependencyConfig['loadShedder']>> = fc.record(
  {
    limit: fc.oneof(fc.integer({ min: 1, max: 10 }), adaptiveArb),
    priorityShares: fc.record(
      { critical: share, high: share, normal: share, low: share },
      { requiredKeys: [] },
    ),
    minRemainingBudget: ms(0, 100),
    queue: fc.record(
      {
        maxSize: fc.integer({ min: 0, max: 5 }),
        timeout: ms(0, 2_000),
        overloadTimeout: ms(0, 50),
        interval: ms(1, 500),
        lifo: fc.boolean(),
      },
      { requiredKeys: ['maxSize'] },
    ),
    retryAfter: ms(0, 5_000),
  },
  { requiredKeys: [] },
);

const hedgeArb: fc.Arbitrary<NonNullable<DependencyConfig['hedge']>> = fc.record(
  { delay: ms(0, 2_000), maxHedges: fc.integer({ min: 0, max: 2 }) },
  { requiredKeys: ['delay'] },
);

const fallbackArb: fc.Arbitrary<NonNullable<DependencyConfig['fallback']>> = fc.record({
  value: fc.oneof(
    fc.constant(null),
    fc.string({ maxLength: 8 }),
    fc.integer(),
    fc.constant({ fallback: true }),
  ),
});

const idempotencyArb: fc.Arbitrary<NonNullable<DependencyConfig['idempotency']>> = fc.record(
  {
    ttl: ms(1, 86_400_000),
    lockTtl: ms(1, 120_000),
    onInProgress: fc.constantFrom('reject' as const, 'wait' as const),
    onStoreError: fc.constantFrom('fail' as const, 'bypass' as const),
    storeFailures: fc.boolean(),
  },
  { requiredKeys: [] },
);

const PART_ARBS: { [K in DependencyPart]: fc.Arbitrary<NonNullable<DependencyConfig[K]>> } = {
  retry: retryArb,
  circuitBreaker: breakerArb,
  bulkhead: bulkheadArb,
  loadShedder: loadShedderArb,
  hedge: hedgeArb,
  fallback: fallbackArb,
  idempotency: idempotencyArb,
};

/**
 * Valid `dependency()` configs: always a budget in [1, maxBudget] ms, sometimes an attempt
 * timeout ≤ the budget, and each part (retry, circuit breaker, bulkhead, load shedder,
 * hedge, fallback, idempotency) in about half of them, with bounded numbers that pass
 * each policy's validation.
 *
 * @example
 * ```ts
 * import fc from 'fast-check';
 * import { dependency } from 'bulwark';
 * import { VirtualClock, faultyDependency } from 'bulwark/testing';
 * import { dependencyConfigArb } from 'bulwark/testing/arbitraries';
 *
 * // No valid config lets a call outlive its budget, even against a dependency that never answers.
 * const bounded = fc.asyncProperty(dependencyConfigArb({ maxBudget: 2_000 }), async (config) => {
 *   const clock = new VirtualClock();
 *   const blackHole = faultyDependency({ clock, hangs: 1 });
 *   const dep = dependency('fuzz', { ...config, clock });
 *   let settled = false;
 *   const done = () => (settled = true);
 *   dep.execute(blackHole.call).then(done, done);
 *   await clock.advance(dep.budget);
 *   return settled;
 * });
 * await fc.assert(bounded);
 * ```
 */
export function dependencyConfigArb(
  options: DependencyConfigArbOptions = {},
): fc.Arbitrary<DependencyConfig> {
  const maxBudget = Math.max(1, Math.floor(options.maxBudget ?? 10_000));
  const included = (Object.keys(PART_ARBS) as DependencyPart[]).filter(
    (part) => options.parts?.[part] !== false,
  );
  const parts = Object.fromEntries(
    included.map((part) => [
      part,
      fc.option(PART_ARBS[part] as fc.Arbitrary<unknown>, { nil: undefined, freq: 2 }),
    ]),
  ) as Record<DependencyPart, fc.Arbitrary<unknown>>;
  return fc
    .record({
      budget: fc.integer({ min: 1, max: maxBudget }),
      timeoutShare: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), {
        nil: undefined,
        freq: 2,
      }),
      parts: fc.record(parts),
    })
    .map(({ budget, timeoutShare, parts: chosen }) => {
      const config: Record<string, unknown> = { budget };
      if (timeoutShare !== undefined)
        config.timeout = Math.max(1, Math.round(budget * timeoutShare));
      for (const [part, value] of Object.entries(chosen))
        if (value !== undefined) config[part] = value;
      return config as DependencyConfig;
    });
}
