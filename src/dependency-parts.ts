// The parts of a dependency, as one ordered table: each config key, how its policy is
// built from its section, and how that policy's events reach the metrics recorder.
import type { Clock } from './core/clock.js';
import { ConfigError, type ConfigProblem } from './core/errors.js';
import { hasInheritedOptions, isPlainObject, type Validator } from './core/validate.js';
import type { DependencyMetrics } from './metrics/recorder.js';
import { BulkheadPolicy, type BulkheadOptions } from './policies/bulkhead.js';
import { CircuitBreakerPolicy } from './policies/circuit-breaker/circuit-breaker.js';
import { FallbackPolicy, type FallbackOptions } from './policies/fallback.js';
import { HedgePolicy, type HedgeOptions } from './policies/hedge.js';
import { IdempotencyPolicy, type IdempotencyOptions } from './policies/idempotency/idempotency.js';
import {
  LoadShedderPolicy,
  type LoadShedderOptions,
} from './policies/load-shedder/load-shedder.js';
import { adaptive, type AdaptiveOptions } from './policies/load-shedder/limits/adaptive.js';
import { RetryPolicy } from './policies/retry/retry.js';
import { TimeoutPolicy } from './policies/timeout.js';
import { rateLimitFromConfig, wireRateLimitMetrics } from './policies/rate-limit/config.js';
import type { RateLimitPolicy } from './policies/rate-limit/rate-limit.js';

/**
 * The whole-call budget of a dependency that sets none, in ms (10 s): no call is unbounded by
 * accident.
 */
export const DEFAULT_BUDGET_MS = 10_000;

/** Runs `make`, turning a ConfigError into problems collected for one combined error. */
export function collect<T>(problems: ConfigProblem[], make: () => T): T | undefined {
  try {
    return make();
  } catch (error) {
    if (error instanceof ConfigError) {
      problems.push(...error.problems);
      return undefined;
    }
    throw error;
  }
}

/** What each part builds: the policy a config key turns into. */
export interface BuiltParts {
  fallback: FallbackPolicy;
  loadShedder: LoadShedderPolicy;
  budget: TimeoutPolicy;
  idempotency: IdempotencyPolicy;
  retry: RetryPolicy;
  circuitBreaker: CircuitBreakerPolicy;
  rateLimit: RateLimitPolicy;
  bulkhead: BulkheadPolicy;
  timeout: TimeoutPolicy;
  hedge: HedgePolicy;
}
export type PartKey = keyof BuiltParts;

/** What a part's build sees: the dependency's name and clock, and the parts built before it. */
export interface BuildEnv {
  readonly name: string;
  readonly clock: Clock | undefined;
  /** Problems of the dependency's own fields (paths under its name). */
  readonly v: Validator;
  /** Problems a policy's constructor reported. */
  readonly problems: ConfigProblem[];
  /** Parts built so far (those above in PARTS). */
  readonly built: Partial<BuiltParts>;
  /** The whole-call budget in ms, once the budget part ran. */
  budgetMs: number;
  /** The attempt timeout in ms, once the timeout part ran. */
  timeoutMs: number;
}

/** One part of a dependency: its config key, how it is built, and how its events reach metrics. */
export interface PartEntry<K extends PartKey> {
  readonly key: K;
  /** Validated construction from the config's value at `key`; undefined when absent, off or invalid. */
  build(value: unknown, env: BuildEnv): BuiltParts[K] | undefined;
  /** Connects the built policy's events and gauges to the dependency's metrics. */
  wire?(policy: BuiltParts[K], recorder: DependencyMetrics): void;
}
export type AnyPartEntry = { [K in PartKey]: PartEntry<K> }[PartKey];

const FALLBACK_KEYS = ['value', 'on'];

/**
 * The value at `key` as an options object: undefined when absent or `false` (off, e.g. to
 * turn off a part inherited from `defaults`), a problem when anything else.
 */
function section(key: string, value: unknown, v: Validator): Record<string, unknown> | undefined {
  if (value === undefined || value === false) return undefined;
  if (!isPlainObject(value) || hasInheritedOptions(value)) {
    v.problem(
      key,
      isPlainObject(value) ? 'options as own keys, not through __proto__' : 'an options object',
      value,
    );
    return undefined;
  }
  return value;
}

/**
 * Builds a policy from the options section at `key`, collecting its constructor's problems.
 * Called from each part's build rather than at module level: PARTS is then a plain literal
 * with no call in it, which a bundler drops, with every policy it names, from an app that
 * never calls dependency().
 */
function fromSection<P>(
  key: string,
  value: unknown,
  env: BuildEnv,
  make: (options: Record<string, unknown>, path: string) => P,
): P | undefined {
  const options = section(key, value, env.v);
  return options === undefined
    ? undefined
    : collect(env.problems, () => make(options, env.v.path(key)));
}

/**
 * Every part of a dependency, outer to inner: the pipeline's order is this table's order,
 * and so is the build order (the attempt timeout reads the budget and retry above it).
 */
export const PARTS: readonly AnyPartEntry[] = [
  {
    key: 'fallback',
    build: (value, env) => {
      const options = section('fallback', value, env.v);
      if (options === undefined) return undefined;
      for (const key of Object.keys(options))
        if (key !== 'value' && key !== 'on') env.v.unknownKey(`fallback.${key}`, FALLBACK_KEYS);
      if (!('value' in options)) {
        env.v.problem('fallback', '{ value, on? }', options);
        return undefined;
      }
      const { value: fallbackValue, on } = options as {
        value: unknown;
        on?: FallbackOptions['on'];
      };
      const clock = env.clock;
      return collect(
        env.problems,
        () =>
          new FallbackPolicy(
            () => fallbackValue,
            on === undefined ? { clock } : { on, clock },
            env.v.path('fallback'),
          ),
      );
    },
  },
  {
    key: 'loadShedder',
    build: (value, env) =>
      fromSection('loadShedder', value, env, (options, path) => {
        let limit = options.limit as LoadShedderOptions['limit'] | AdaptiveOptions | undefined;
        if (
          isPlainObject(limit) &&
          !('acquire' in limit) &&
          typeof (limit as { onSample?: unknown }).onSample !== 'function'
        ) {
          limit = collect(env.problems, () => adaptive(limit as AdaptiveOptions, `${path}.limit`));
        }
        return new LoadShedderPolicy(
          { ...options, limit, clock: env.clock } as LoadShedderOptions,
          path,
        );
      }),
    wire: (shedder, recorder) => {
      recorder.observeConcurrencyLimit(() => shedder.limit);
      shedder.on('shed', (e) => recorder.recordLoadShed(e.priority, e.reason));
    },
  },
  {
    key: 'budget',
    build: (value, env) => {
      env.budgetMs = env.v.duration('budget', value, DEFAULT_BUDGET_MS, {
        min: 1,
        allowInfinity: true,
      });
      return env.budgetMs === Infinity
        ? undefined
        : new TimeoutPolicy(env.budgetMs, { clock: env.clock }, 'budget');
    },
  },
  {
    key: 'idempotency',
    build: (value, env) =>
      fromSection(
        'idempotency',
        value,
        env,
        (options, path) =>
          new IdempotencyPolicy({ ...options, clock: env.clock } as IdempotencyOptions, path),
      ),
    wire: (idem, recorder) => {
      idem.on('executed', (e) => recorder.recordIdempotency(e.store, 'executed'));
      idem.on('replayed', (e) => recorder.recordIdempotency(e.store, 'replayed'));
      idem.on('in_progress', (e) => recorder.recordIdempotency(e.store, 'in_progress'));
      idem.on('key_reused', (e) => recorder.recordIdempotency(e.store, 'key_reused'));
    },
  },
  {
    key: 'retry',
    build: (value, env) =>
      fromSection(
        'retry',
        value,
        env,
        (options, path) => new RetryPolicy({ ...options, clock: env.clock }, path),
      ),
    wire: (retry, recorder) => {
      retry.on('retry', (e) => recorder.recordRetry(e.reason));
      retry.on('retryBudgetExhausted', () => recorder.recordRetryBudgetExhausted());
    },
  },
  {
    key: 'circuitBreaker',
    build: (value, env) =>
      fromSection(
        'circuitBreaker',
        value,
        env,
        (options, path) =>
          new CircuitBreakerPolicy({ name: env.name, ...options, clock: env.clock }, path),
      ),
    wire: (breaker, recorder) => {
      recorder.observeCircuitState(() => breaker.state);
      breaker.on('stateChange', (e) => recorder.recordCircuitTransition(e.from, e.to));
    },
  },
  {
    key: 'rateLimit',
    build: (value, env) =>
      fromSection('rateLimit', value, env, (options, path) =>
        rateLimitFromConfig(options, env.name, env.clock, path),
      ),
    wire: (limiter, recorder) => wireRateLimitMetrics(recorder, limiter),
  },
  {
    key: 'bulkhead',
    build: (value, env) =>
      fromSection(
        'bulkhead',
        value,
        env,
        (options, path) =>
          new BulkheadPolicy(
            { name: env.name, ...options, clock: env.clock } as BulkheadOptions,
            path,
          ),
      ),
    wire: (bulkhead, recorder) => {
      recorder.observeBulkhead(() => ({ inFlight: bulkhead.inFlight, queued: bulkhead.queued }));
    },
  },
  {
    key: 'timeout',
    build: (value, env) => {
      const { budgetMs, v } = env;
      // Default: the budget shared equally by the attempts.
      const attempts = env.built.retry?.maxAttempts ?? 1;
      const defaultTimeout =
        budgetMs === Infinity ? Infinity : Math.max(1, Math.floor(budgetMs / attempts));
      env.timeoutMs = v.duration('timeout', value, defaultTimeout, {
        min: 1,
        allowInfinity: true,
      });
      if (value !== undefined && env.timeoutMs > budgetMs) {
        v.problem('timeout', `an attempt timeout ≤ the budget (${budgetMs} ms)`, value);
      }
      return env.timeoutMs !== Infinity && env.timeoutMs < budgetMs
        ? new TimeoutPolicy(env.timeoutMs, { clock: env.clock }, 'timeout')
        : undefined;
    },
  },
  {
    key: 'hedge',
    build: (value, env) =>
      fromSection(
        'hedge',
        value,
        env,
        (options, path) => new HedgePolicy({ ...options, clock: env.clock } as HedgeOptions, path),
      ),
  },
];
