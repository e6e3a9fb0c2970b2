import { systemClock, type Clock } from './core/clock.js';
import type { CallContext, Operation, Step } from './core/context.js';
import {
  BulkheadRejectedError,
  CircuitOpenError,
  ConfigError,
  LoadShedError,
  TimeoutError,
  type ConfigProblem,
} from './core/errors.js';
import type { CallOutcome, DependencyMetrics, MetricsProvider } from './metrics/recorder.js';
import {
  BasePolicy,
  pipeline,
  type ExecuteOptions,
  type Pipeline,
  type Policy,
} from './core/pipeline.js';
import { isPlainObject, Validator } from './core/validate.js';
import { withDependencyDefaults } from './dependency-defaults.js';
import { BulkheadPolicy, type BulkheadOptions } from './policies/bulkhead.js';
import { CircuitBreakerPolicy } from './policies/circuit-breaker/circuit-breaker.js';
import type { CircuitBreakerOptions } from './policies/circuit-breaker/options.js';
import { FallbackPolicy, type FallbackOptions } from './policies/fallback.js';
import { HedgePolicy, type HedgeOptions } from './policies/hedge.js';
import { IdempotencyPolicy, type IdempotencyOptions } from './policies/idempotency/idempotency.js';
import {
  LoadShedderPolicy,
  type LoadShedderOptions,
} from './policies/load-shedder/load-shedder.js';
import { adaptive, type AdaptiveOptions } from './policies/load-shedder/limits/adaptive.js';
import { RetryPolicy, type RetryOptions } from './policies/retry/retry.js';
import { TimeoutPolicy } from './policies/timeout.js';

/** One downstream dependency's policies, as plain (JSON/YAML-friendly) data. */
export interface DependencyConfig {
  /** Whole-call time budget (default 10 s). `Infinity` must be written out. */
  budget?: number | string;
  /** Per-attempt timeout (default: the budget shared equally by `retry.maxAttempts`). */
  timeout?: number | string;
  /**
   * Retries (see RetryOptions). Left out: 3 attempts with a retry budget (dependency-defaults.ts);
   * `false`: no retries.
   */
  retry?: Omit<RetryOptions, 'clock'> | false;
  /**
   * A circuit breaker (see CircuitBreakerOptions), named after the dependency unless `name` is
   * given; it waits for the trial while open unless `whileOpen` says otherwise. Left out: one
   * with the default settings; `false`: none.
   */
  circuitBreaker?: Omit<CircuitBreakerOptions, 'clock'> | false;
  /** A bulkhead (see BulkheadOptions), named after the dependency unless `name` is given. */
  bulkhead?: Omit<BulkheadOptions, 'clock'>;
  /**
   * `limit` may be a number or adaptive-limiter options (`{ algorithm: 'gradient', min, max }`).
   * Left out: an adaptive gradient limit of 500–1000 calls in flight; `false`: none.
   */
  loadShedder?:
    | (Omit<LoadShedderOptions, 'clock' | 'limit'> & {
        limit?: LoadShedderOptions['limit'] | AdaptiveOptions;
      })
    | false;
  /** Hedged attempts (see HedgeOptions), inside the attempt timeout; only for idempotent work. */
  hedge?: Omit<HedgeOptions, 'clock'>;
  /** `{ value }` to return instead of failing (`on` narrows which failures). */
  fallback?: { value: unknown; on?: FallbackOptions['on'] };
  /** Idempotency keys (see IdempotencyOptions), outside retry: one claim covers every attempt. */
  idempotency?: Omit<IdempotencyOptions, 'clock'>;
}

/** What `dependency()` and `dependencies()` take besides the policies' own options. */
export interface DependencyOptions {
  /**
   * Where the dependency's metrics go, e.g. `prometheusMetrics({ registry })` from
   * `bulwark/prometheus`.
   */
  metrics?: MetricsProvider;
  /** The clock every part runs on (default: the system clock); a `VirtualClock` in tests. */
  clock?: Clock;
}

/**
 * The whole-call budget of a dependency that sets none, in ms (10 s): no call is unbounded by
 * accident.
 */
export const DEFAULT_BUDGET_MS = 10_000;

const CONFIG_KEYS = [
  'budget',
  'timeout',
  'retry',
  'circuitBreaker',
  'bulkhead',
  'loadShedder',
  'hedge',
  'fallback',
  'idempotency',
  'metrics',
  'clock',
] as const;

/**
 * One downstream's policy set, built by `dependency()`: itself a policy, so it can be
 * `execute`d or put in a pipeline. Each configured part is exposed for its events, state
 * and stats; an unconfigured one is `undefined`.
 */
export interface Dependency extends Policy {
  /** The name given to `dependency()`: in error messages and as the metrics label. */
  readonly name: string;
  /** The whole-call budget in ms (Infinity only when written out). */
  readonly budget: number;
  /** The attempt timeout in ms (Infinity: none). */
  readonly timeout: number;
  /** The retry policy, when configured. */
  readonly retry: RetryPolicy | undefined;
  /** The circuit breaker, when configured: read `state`, `stats()`, or `isolate()` it. */
  readonly breaker: CircuitBreakerPolicy | undefined;
  /** The bulkhead, when configured: read `inFlight` and `queued`. */
  readonly bulkhead: BulkheadPolicy | undefined;
  /** The load shedder, when configured: read `limit` and `inFlight`. */
  readonly loadShedder: LoadShedderPolicy | undefined;
  /** The hedge policy, when configured. */
  readonly hedge: HedgePolicy | undefined;
  /** The fallback policy, when configured. */
  readonly fallback: FallbackPolicy | undefined;
  /** The idempotency policy, when configured. */
  readonly idempotency: IdempotencyPolicy | undefined;
  /** The composed policies, outer to inner. */
  readonly pipeline: Pipeline;
}

/** Runs `make`, turning a ConfigError into problems collected for one combined error. */
function collect<T>(problems: ConfigProblem[], make: () => T): T | undefined {
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

/** The outermost step of a dependency with metrics: times every call and records its outcome. */
class MetricsStep extends BasePolicy {
  readonly kind = 'metrics';
  constructor(
    private readonly recorder: DependencyMetrics,
    clock: Clock | undefined,
  ) {
    super(clock);
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    const clock = ctx.clock;
    const start = clock.now();
    return next.invoke(ctx, fn).then(
      (value) => {
        this.recorder.recordCall(
          ctx.fellBack ? 'fallback' : 'success',
          (clock.now() - start) / 1000,
        );
        return value;
      },
      (error: unknown) => {
        this.recorder.recordCall(outcomeOf(error), (clock.now() - start) / 1000);
        throw error;
      },
    );
  }
}

function outcomeOf(error: unknown): CallOutcome {
  if (error instanceof TimeoutError) return 'timeout';
  if (error instanceof CircuitOpenError) return 'short_circuited';
  if (error instanceof BulkheadRejectedError) return 'rejected';
  if (error instanceof LoadShedError) return 'shed';
  return 'failure';
}

class DependencyPolicy implements Dependency {
  readonly kind = 'dependency';
  constructor(
    readonly name: string,
    readonly budget: number,
    readonly timeout: number,
    readonly retry: RetryPolicy | undefined,
    readonly breaker: CircuitBreakerPolicy | undefined,
    readonly bulkhead: BulkheadPolicy | undefined,
    readonly loadShedder: LoadShedderPolicy | undefined,
    readonly hedge: HedgePolicy | undefined,
    readonly fallback: FallbackPolicy | undefined,
    readonly idempotency: IdempotencyPolicy | undefined,
    readonly pipeline: Pipeline,
  ) {}

  get clock(): Clock | undefined {
    return this.pipeline.clock;
  }

  set clock(clock: Clock | undefined) {
    this.pipeline.clock = clock;
  }

  execute<T>(fn: Operation<T>, options?: ExecuteOptions): Promise<T> {
    return this.pipeline.execute(fn, options);
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    return this.pipeline.run(ctx, fn, next);
  }
}

/**
 * The standard policy set for one downstream, outer to inner:
 * fallback → load shedder → budget → idempotency → retry → circuit breaker → bulkhead →
 * attempt timeout → hedge → fn. Only the configured parts are built, plus a default
 * budget (10 s) and attempt timeout, so no call is unbounded by accident. Every field is
 * validated here, once; all problems are reported together with their paths.
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 *
 * const inventory = dependency('inventory', {
 *   budget: '2s', // the whole call, every retry included
 *   timeout: '500ms', // each attempt
 *   retry: { maxAttempts: 3 },
 *   circuitBreaker: { failureRate: 0.5, window: { calls: 50 } },
 * });
 * const stock = await inventory.execute(async (ctx) => {
 *   const res = await fetch('https://inventory.internal/stock/sku-42', { signal: ctx.signal });
 *   if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { status: res.status });
 *   return res.json();
 * });
 * ```
 */
export function dependency(
  name: string,
  config: DependencyConfig & DependencyOptions = {},
): Dependency {
  const problems: ConfigProblem[] = [];
  if (typeof name !== 'string' || name === '') {
    throw new ConfigError([
      { path: 'dependency(name)', expected: 'a non-empty string', got: name },
    ]);
  }
  const v = new Validator(name);
  const c = withDependencyDefaults(v.object(config, CONFIG_KEYS));
  const clock = (c.clock as Clock | undefined) ?? undefined;
  const metrics = c.metrics as MetricsProvider | undefined;
  if (metrics !== undefined && typeof metrics?.forDependency !== 'function') {
    v.problem('metrics', 'a metrics provider (prometheusMetrics(...))', metrics);
  }
  const budgetMs = v.duration('budget', c.budget, DEFAULT_BUDGET_MS, {
    min: 1,
    allowInfinity: true,
  });
  const at = (key: string) => v.path(key);
  const section = (key: string): Record<string, unknown> | undefined => {
    const value = c[key];
    if (value === undefined || value === false) return undefined;
    if (!isPlainObject(value)) {
      v.problem(key, 'an options object', value);
      return undefined;
    }
    return value;
  };

  const retryConfig = section('retry');
  const retry = retryConfig
    ? collect(problems, () => new RetryPolicy({ ...retryConfig, clock }, at('retry')))
    : undefined;
  const attempts = retry?.maxAttempts ?? 1;
  const defaultTimeout =
    budgetMs === Infinity ? Infinity : Math.max(1, Math.floor(budgetMs / attempts));
  const timeoutMs = v.duration('timeout', c.timeout, defaultTimeout, {
    min: 1,
    allowInfinity: true,
  });
  if (c.timeout !== undefined && timeoutMs > budgetMs) {
    v.problem('timeout', `an attempt timeout ≤ the budget (${budgetMs} ms)`, c.timeout);
  }

  const breakerConfig = section('circuitBreaker');
  const breaker = breakerConfig
    ? collect(
        problems,
        () => new CircuitBreakerPolicy({ name, ...breakerConfig, clock }, at('circuitBreaker')),
      )
    : undefined;
  const bulkheadConfig = section('bulkhead');
  const bulkhead = bulkheadConfig
    ? collect(
        problems,
        () =>
          new BulkheadPolicy({ name, ...bulkheadConfig, clock } as BulkheadOptions, at('bulkhead')),
      )
    : undefined;
  const shedderConfig = section('loadShedder');
  let loadShedder: LoadShedderPolicy | undefined;
  if (shedderConfig) {
    let limit = shedderConfig.limit as LoadShedderOptions['limit'] | AdaptiveOptions | undefined;
    if (
      isPlainObject(limit) &&
      !('acquire' in limit) &&
      typeof (limit as { onSample?: unknown }).onSample !== 'function'
    ) {
      limit = collect(problems, () =>
        adaptive(limit as AdaptiveOptions, `${at('loadShedder')}.limit`),
      );
    }
    loadShedder = collect(
      problems,
      () =>
        new LoadShedderPolicy(
          { ...shedderConfig, limit, clock } as LoadShedderOptions,
          at('loadShedder'),
        ),
    );
  }
  const hedgeConfig = section('hedge');
  const hedge = hedgeConfig
    ? collect(
        problems,
        () => new HedgePolicy({ ...hedgeConfig, clock } as HedgeOptions, at('hedge')),
      )
    : undefined;
  const idemConfig = section('idempotency');
  const idempotency = idemConfig
    ? collect(
        problems,
        () =>
          new IdempotencyPolicy({ ...idemConfig, clock } as IdempotencyOptions, at('idempotency')),
      )
    : undefined;
  const fallbackConfig = section('fallback');
  let fallback: FallbackPolicy | undefined;
  if (fallbackConfig) {
    if (!('value' in fallbackConfig)) v.problem('fallback', '{ value, on? }', fallbackConfig);
    else {
      const { value, on } = fallbackConfig as { value: unknown; on?: FallbackOptions['on'] };
      fallback = collect(
        problems,
        () =>
          new FallbackPolicy(
            () => value,
            on === undefined ? { clock } : { on, clock },
            at('fallback'),
          ),
      );
    }
  }
  problems.push(...v.problems);
  if (problems.length > 0) throw new ConfigError(problems);

  const recorder = metrics?.forDependency(name);
  const parts: Policy[] = [];
  if (recorder) parts.push(new MetricsStep(recorder, clock));
  if (fallback) parts.push(fallback);
  if (loadShedder) parts.push(loadShedder);
  if (budgetMs !== Infinity) parts.push(new TimeoutPolicy(budgetMs, { clock }, 'budget'));
  if (idempotency) parts.push(idempotency);
  if (retry) parts.push(retry);
  if (breaker) parts.push(breaker);
  if (bulkhead) parts.push(bulkhead);
  if (timeoutMs !== Infinity && timeoutMs < budgetMs)
    parts.push(new TimeoutPolicy(timeoutMs, { clock }, 'timeout'));
  if (hedge) parts.push(hedge);
  const composed = pipeline(...parts);
  if (clock !== undefined) composed.clock = clock;
  composed.clock ??= systemClock;

  if (recorder) wireMetrics(recorder, { retry, breaker, bulkhead, loadShedder, idempotency });
  return new DependencyPolicy(
    name,
    budgetMs,
    timeoutMs,
    retry,
    breaker,
    bulkhead,
    loadShedder,
    hedge,
    fallback,
    idempotency,
    composed,
  );
}

function wireMetrics(
  recorder: DependencyMetrics,
  p: {
    retry?: RetryPolicy;
    breaker?: CircuitBreakerPolicy;
    bulkhead?: BulkheadPolicy;
    loadShedder?: LoadShedderPolicy;
    idempotency?: IdempotencyPolicy;
  },
): void {
  if (p.retry) {
    p.retry.on('retry', (e) => recorder.recordRetry(e.reason));
    p.retry.on('budgetExhausted', () => recorder.recordRetryBudgetExhausted());
  }
  if (p.breaker) {
    const breaker = p.breaker;
    recorder.observeCircuitState(() => breaker.state);
    breaker.on('stateChange', (e) => recorder.recordCircuitTransition(e.from, e.to));
  }
  if (p.bulkhead) {
    const bulkhead = p.bulkhead;
    recorder.observeBulkhead(() => ({ inFlight: bulkhead.inFlight, queued: bulkhead.queued }));
  }
  if (p.loadShedder) {
    const shedder = p.loadShedder;
    recorder.observeConcurrencyLimit(() => shedder.limit);
    shedder.on('shed', (e) => recorder.recordLoadShed(e.priority, e.reason));
  }
  if (p.idempotency) {
    const idem = p.idempotency;
    idem.on('executed', (e) => recorder.recordIdempotency(e.store, 'executed'));
    idem.on('replayed', (e) => recorder.recordIdempotency(e.store, 'replayed'));
    idem.on('in_progress', (e) => recorder.recordIdempotency(e.store, 'in_progress'));
    idem.on('key_reused', (e) => recorder.recordIdempotency(e.store, 'key_reused'));
  }
}

/** The plain-data config of `dependencies()`: `defaults`, then one section per dependency. */
export interface DependenciesConfig {
  /** Merged under every dependency (a dependency's own keys win, section by section). */
  defaults?: DependencyConfig;
  [name: string]: DependencyConfig | undefined;
}

/**
 * Builds many dependencies from one plain object (e.g. parsed from JSON or YAML):
 * `dependencies({ defaults: { budget: '2s' }, payments: { retry: { maxAttempts: 2 } } }, { metrics })`.
 * All problems across all dependencies are reported in one ConfigError.
 *
 * @example
 * ```ts
 * import { dependencies } from 'bulwark';
 *
 * const deps = dependencies({
 *   defaults: { budget: '2s', retry: { maxAttempts: 3, retryBudget: { ratio: 0.2 } } },
 *   payments: { timeout: '500ms', circuitBreaker: { consecutiveFailures: 5 } },
 *   search: { hedge: { delay: '50ms' }, fallback: { value: { results: [] } } },
 * });
 * const res = await deps.search.execute((ctx) =>
 *   fetch('https://search.internal/q?term=tent', { signal: ctx.signal }),
 * );
 * ```
 */
export function dependencies<K extends string>(
  config: { defaults?: DependencyConfig } & Record<K, DependencyConfig>,
  options: DependencyOptions = {},
): Record<Exclude<K, 'defaults'>, Dependency> {
  if (!isPlainObject(config))
    throw new ConfigError([
      { path: 'dependencies', expected: 'an object of dependency configs', got: config },
    ]);
  const problems: ConfigProblem[] = [];
  const defaults = (config as { defaults?: unknown }).defaults;
  if (defaults !== undefined && !isPlainObject(defaults))
    problems.push({ path: 'defaults', expected: 'an options object', got: defaults });
  const out: Record<string, Dependency> = {};
  for (const [name, own] of Object.entries(config)) {
    if (name === 'defaults') continue;
    if (!isPlainObject(own)) {
      problems.push({ path: name, expected: 'an options object', got: own });
      continue;
    }
    const merged: Record<string, unknown> = { ...(isPlainObject(defaults) ? defaults : {}) };
    for (const [key, value] of Object.entries(own)) {
      const base = merged[key];
      merged[key] = isPlainObject(base) && isPlainObject(value) ? { ...base, ...value } : value;
    }
    const dep = collect(problems, () => dependency(name, { ...merged, ...options }));
    if (dep) out[name] = dep;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as Record<Exclude<K, 'defaults'>, Dependency>;
}
