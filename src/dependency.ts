import { systemClock, type Clock } from './core/clock.js';
import type { CallContext, Operation, Step } from './core/context.js';
import { BulkheadRejectedError } from './policies/bulkhead-error.js';
import { CircuitOpenError } from './policies/circuit-breaker/errors.js';
import {
  abortedBeforeStart,
  attributeError,
  ConfigError,
  TimeoutError,
  type ConfigProblem,
} from './core/errors.js';
import { LoadShedError } from './policies/load-shedder/errors.js';
import type {
  CallOutcome,
  DependencyMetrics,
  MetricsProvider,
  TracedCall,
} from './metrics/recorder.js';
import {
  BasePolicy,
  guardCall,
  pipeline,
  type AnyPolicy,
  type ExecuteOptions,
  type Pipeline,
  type Policy,
} from './core/pipeline.js';
import {
  hasInheritedOptions,
  isPlainObject,
  PROTO_KEY_PROBLEM,
  Validator,
} from './core/validate.js';
import type { BulkheadOptions, BulkheadPolicy } from './policies/bulkhead.js';
import type { CircuitBreakerPolicy } from './policies/circuit-breaker/circuit-breaker.js';
import { withDependencyDefaults } from './dependency-defaults.js';
import type { CircuitBreakerOptions } from './policies/circuit-breaker/options.js';
import { FELL_BACK, type FallbackOptions, type FallbackPolicy } from './policies/fallback.js';
import type { HedgeOptions, HedgePolicy } from './policies/hedge.js';
import type { IdempotencyOptions, IdempotencyPolicy } from './policies/idempotency/idempotency.js';
import type {
  LoadShedderOptions,
  LoadShedderPolicy,
} from './policies/load-shedder/load-shedder.js';
import type { AdaptiveOptions } from './policies/load-shedder/limits/adaptive.js';
import type { RetryOptions, RetryPolicy } from './policies/retry/retry.js';
import type { RateLimitConfig } from './policies/rate-limit/config.js';
import { RateLimitError } from './policies/rate-limit/errors.js';
import type { RateLimitPolicy } from './policies/rate-limit/rate-limit.js';
import { LimitStoreError } from './stores/limit-store.js';
import {
  collect,
  DEFAULT_BUDGET_MS,
  PARTS,
  type BuildEnv,
  type BuiltParts,
  type PartKey,
} from './dependency-parts.js';

export { DEFAULT_BUDGET_MS } from './dependency-parts.js';

/** One downstream dependency's policies, as plain (JSON/YAML-friendly) data. */
export interface DependencyConfig {
  /** Whole-call time budget (default 10 s). `Infinity` must be written out. */
  budget?: number | string;
  /** Per-attempt timeout (default: the budget shared equally by `retry.maxAttempts`). */
  timeout?: number | string;
  /**
   * Retries (see RetryOptions). Left out: 4 attempts with a retry budget (dependency-defaults.ts);
   * `false`: no retries.
   */
  retry?: Omit<RetryOptions, 'clock'> | false;
  /**
   * A circuit breaker (see CircuitBreakerOptions), named after the dependency unless `name` is
   * given; it waits for the trial while open unless `whileOpen` says otherwise. Left out: one
   * with the default settings; `false`: none.
   */
  circuitBreaker?: Omit<CircuitBreakerOptions, 'clock'> | false;
  /**
   * A rate limit (see RateLimitOptions), inside the breaker and outside the bulkhead: every
   * attempt takes a slot, and a paced call holds no bulkhead slot while it waits.
   */
  rateLimit?: RateLimitConfig;
  /** A bulkhead (see BulkheadOptions), named after the dependency unless `name` is given. */
  bulkhead?: Omit<BulkheadOptions, 'clock'>;
  /**
   * `limit` may be a number or adaptive-limiter options (`{ algorithm: 'gradient', min, max }`).
   * Left out: an adaptive gradient limit of 600–1200 calls in flight with a queue of 100
   * (see dependency-defaults.ts); `false`: none.
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

const CONFIG_KEYS = [
  'budget',
  'timeout',
  'retry',
  'circuitBreaker',
  'bulkhead',
  'rateLimit',
  'loadShedder',
  'hedge',
  'fallback',
  'idempotency',
  'metrics',
  'clock',
] as const;

/**
 * The substitute a dependency config's `fallback: { value }` may resolve with: what
 * `execute` returns besides fn's own value (`never` without a fallback).
 */
export type FallbackValueOf<C> = C extends { fallback?: infer S }
  ? S extends { value: infer V }
    ? V
    : never
  : never;

/** `A` with every key that `B` does not know typed `never`: keeps typos compile errors. */
type OnlyKnownKeys<A, B> = A & { [K in Exclude<keyof A, keyof B>]: never };

/**
 * One downstream's policy set, built by `dependency()`: itself a policy, so it can be
 * `execute`d or put in a pipeline. Each configured part is exposed for its events, state
 * and stats; an unconfigured one is `undefined`. `F`: the configured fallback value's type.
 */
export interface Dependency<F = never> extends Policy<F> {
  /** The name given to `dependency()`: in error messages and as the metrics label. */
  readonly name: string;
  /** The whole-call budget in ms (Infinity only when written out). */
  readonly budget: number;
  /** The attempt timeout in ms (Infinity: none). */
  readonly timeout: number;
  /** The retry policy (built by default; `retry: false` leaves it out). */
  readonly retry: RetryPolicy | undefined;
  /** The circuit breaker (built by default): read `state`, `stats()`, or `isolate()` it. */
  readonly breaker: CircuitBreakerPolicy | undefined;
  /** The bulkhead, when configured: read `inFlight` and `queued`. */
  readonly bulkhead: BulkheadPolicy | undefined;
  /** The rate limit, when configured: read `waiting`, subscribe to its events. */
  readonly rateLimit: RateLimitPolicy | undefined;
  /** The load shedder (built by default): read `limit` and `inFlight`. */
  readonly loadShedder: LoadShedderPolicy | undefined;
  /** The hedge policy, when configured. */
  readonly hedge: HedgePolicy | undefined;
  /** The fallback policy, when configured. */
  readonly fallback: FallbackPolicy | undefined;
  /** The idempotency policy, when configured. */
  readonly idempotency: IdempotencyPolicy | undefined;
  /** The composed policies, outer to inner. */
  readonly pipeline: Pipeline<F>;
}

/**
 * The metrics step as the first step of a call. A call with a deadline, a caller signal or
 * a parent is guarded inside it rather than around it: when that guard ends the call (the
 * caller's budget runs out, the caller aborts) the call is recorded even if its work never
 * settles, and no inner part has a tighter deadline that would end it too.
 */
class MetricsEntryStep implements Step {
  constructor(
    private readonly metrics: MetricsStep,
    private readonly next: Step,
  ) {}

  invoke<T>(ctx: CallContext, fn: Operation<T>): Promise<T> {
    try {
      return this.metrics.runCall(ctx, fn, this.next);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  enter<T>(ctx: CallContext, fn: Operation<T>, callerSignal: AbortSignal | undefined): Promise<T> {
    if (callerSignal === undefined && ctx.isFreshRoot) return this.invoke(ctx, fn);
    try {
      return this.metrics.runCall(ctx, fn, new GuardedRest(this.next, callerSignal));
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/** The rest of a call, guarded first (see MetricsEntryStep); one per call with options. */
class GuardedRest implements Step {
  constructor(
    private readonly next: Step,
    private readonly callerSignal: AbortSignal | undefined,
  ) {}

  invoke<T>(ctx: CallContext, fn: Operation<T>): Promise<T> {
    return guardCall(ctx, this.next, fn, this.callerSignal);
  }
}

/** DependencyPolicy.execute's request to the metrics step to name the call's error. */
const NAMING = Symbol('naming');

/** The outermost step of a dependency with metrics: times every call and records its outcome. */
class MetricsStep extends BasePolicy {
  readonly kind = 'metrics';
  /** @internal It leaves the call's context as it found it: the next step may start the call. */
  readonly passesEntry = true;
  /**
   * Set to NAMING by DependencyPolicy.execute just before it starts a call; the call's
   * promise once this step's reaction also names the dependency in its error; undefined
   * otherwise (a call started through the pipeline itself is not named, as before).
   * @internal
   */
  named: Promise<unknown> | typeof NAMING | undefined = undefined;

  constructor(
    private readonly recorder: DependencyMetrics,
    clock: Clock | undefined,
    private readonly dependency: string,
  ) {
    super(clock);
  }

  /** @internal As a call's first step it measures the call's guard too (MetricsEntryStep). */
  composeStep(_inner: readonly unknown[], next: Step, entry: boolean): Step | undefined {
    return entry ? new MetricsEntryStep(this, next) : undefined;
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    return this.measure(ctx, fn, next, undefined);
  }

  /**
   * `run` as the first step of a call the dependency started: the one reaction also names
   * the dependency in the call's error, so the call pays one reaction beside the caller's,
   * not two (one reaction and its promise measured ≈ 20–50 ns and 96 B per call).
   * @internal
   */
  /** @internal Whether this step's reaction names `running`'s error; ends the request. */
  namedCall(running: Promise<unknown>): boolean {
    const named = this.named === running;
    this.named = undefined;
    return named;
  }

  runCall<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    if (this.recorder.enabled === false) return next.invoke(ctx, fn);
    if (this.named !== NAMING) return this.measure(ctx, fn, next, undefined);
    // Taken before fn runs: a call fn makes of this dependency asks again for itself.
    this.named = undefined;
    const running = this.measure(ctx, fn, next, this.dependency);
    this.named = running;
    return running;
  }

  private measure<T>(
    ctx: CallContext,
    fn: Operation<T>,
    next: Step,
    dependency: string | undefined,
  ): Promise<T> {
    const recorder = this.recorder;
    // An idle backend (OpenTelemetry with no SDK) costs this one read.
    if (recorder.enabled === false) return next.invoke(ctx, fn);
    const clock = ctx.clock;
    const start = clock.now();
    const traced = recorder.tracing?.startCall(ctx);
    let running: Promise<T>;
    if (traced !== undefined) running = traced.run(ctx, fn, next);
    // The budget behind this step reads the clock first thing: it takes this reading.
    else if (next.invokeAt !== undefined) running = next.invokeAt(ctx, fn, start);
    else running = next.invoke(ctx, fn);
    // A reaction beside the caller's, not a link in its chain: attached first, it records
    // before the caller sees the outcome, and the caller waits one promise less.
    running.then(
      () => {
        const outcome = ctx.get(FELL_BACK) === true ? 'fallback' : 'success';
        record(recorder, traced, outcome, (clock.now() - start) / 1000, undefined);
      },
      (error: unknown) => {
        record(recorder, traced, outcomeOf(error), (clock.now() - start) / 1000, error);
        if (dependency !== undefined) attributeError(error, dependency);
      },
    );
    return running;
  }
}

/** Records one call's end; a faulty backend is reported apart and never changes the call. */
function record(
  recorder: DependencyMetrics,
  traced: TracedCall | undefined,
  outcome: CallOutcome,
  seconds: number,
  error: unknown,
): void {
  try {
    recorder.recordCall(outcome, seconds);
    traced?.end(outcome, error);
  } catch (failure) {
    queueMicrotask(() => {
      throw failure;
    });
  }
}

function outcomeOf(error: unknown): CallOutcome {
  if (error instanceof TimeoutError) return 'timeout';
  if (error instanceof CircuitOpenError) return 'short_circuited';
  if (error instanceof BulkheadRejectedError) return 'rejected';
  if (error instanceof LoadShedError) return 'shed';
  if (error instanceof RateLimitError || error instanceof LimitStoreError) return 'rejected';
  return 'failure';
}

/** A dependency's built parts and its composed pipeline. */
class DependencyPolicy implements Dependency<unknown> {
  readonly kind = 'dependency';
  declare readonly substituteType?: () => unknown;
  readonly retry: RetryPolicy | undefined;
  readonly breaker: CircuitBreakerPolicy | undefined;
  readonly bulkhead: BulkheadPolicy | undefined;
  readonly rateLimit: RateLimitPolicy | undefined;
  readonly loadShedder: LoadShedderPolicy | undefined;
  readonly hedge: HedgePolicy | undefined;
  readonly fallback: FallbackPolicy | undefined;
  readonly idempotency: IdempotencyPolicy | undefined;

  constructor(
    readonly name: string,
    readonly budget: number,
    readonly timeout: number,
    built: Partial<BuiltParts>,
    readonly pipeline: Pipeline<unknown>,
    private readonly metrics: MetricsStep | undefined,
  ) {
    this.retry = built.retry;
    this.breaker = built.circuitBreaker;
    this.bulkhead = built.bulkhead;
    this.rateLimit = built.rateLimit;
    this.loadShedder = built.loadShedder;
    this.hedge = built.hedge;
    this.fallback = built.fallback;
    this.idempotency = built.idempotency;
  }

  get clock(): Clock | undefined {
    return this.pipeline.clock;
  }

  set clock(clock: Clock | undefined) {
    this.pipeline.clock = clock;
  }

  execute<T>(fn: Operation<T>, options?: ExecuteOptions): Promise<T | unknown> {
    const signal = options?.signal;
    if (signal !== undefined && signal.aborted)
      return Promise.reject(abortedBeforeStart(signal.reason, this.name));
    const metrics = this.metrics;
    if (metrics === undefined) return this.nameErrors(this.pipeline.execute(fn, options));
    // The metrics step's one reaction names the error when the step started this very call
    // (it notes the call's promise after any call its fn made of this dependency). A call
    // refused before it reached the step finds no promise of its own there.
    metrics.named = NAMING;
    const running = this.pipeline.execute(fn, options);
    return metrics.namedCall(running) ? running : this.nameErrors(running);
  }

  private nameErrors<T>(running: Promise<T>): Promise<T> {
    // Beside the caller's reaction, attached first (the caller sees the error named), and
    // not in its chain: the caller waits one promise less.
    running.then(undefined, this.attribute);
    return running;
  }

  /** Names this dependency in the bulwark errors its calls end with (bound once, not per call). */
  private readonly attribute = (error: unknown): void => {
    attributeError(error, this.name);
  };

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    return this.pipeline.run(ctx, fn, next);
  }
}

/**
 * The standard policy set for one downstream, outer to inner:
 * fallback → load shedder → budget → idempotency → retry → circuit breaker → rate limit → bulkhead →
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
export function dependency<V>(
  name: string,
  config: DependencyConfig & DependencyOptions & { fallback: { value: V } },
): Dependency<V>;
export function dependency(name: string, config?: DependencyConfig & DependencyOptions): Dependency;
export function dependency(
  name: string,
  config: DependencyConfig & DependencyOptions = {},
): Dependency<unknown> {
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
  const env: BuildEnv = {
    name,
    clock,
    v,
    problems: [],
    built: {},
    budgetMs: DEFAULT_BUDGET_MS,
    timeoutMs: Infinity,
  };
  const built = env.built as Record<PartKey, AnyPolicy | undefined>;
  for (const part of PARTS) built[part.key] = part.build(c[part.key], env);
  const problems = [...env.problems, ...v.problems];
  if (problems.length > 0) throw new ConfigError(problems);

  const recorder = metrics?.forDependency(name);
  const metricsStep = recorder ? new MetricsStep(recorder, clock, name) : undefined;
  const steps: AnyPolicy[] = metricsStep ? [metricsStep] : [];
  for (const part of PARTS) {
    const policy = built[part.key];
    if (policy !== undefined) steps.push(policy);
  }
  // Innermost, so a tracing backend sees each run of fn: every retry and every hedge.
  if (recorder?.tracing) steps.push(recorder.tracing.attempt);
  const composed = pipeline(...steps);
  if (clock !== undefined) composed.clock = clock;
  composed.clock ??= systemClock;

  if (recorder) {
    for (const part of PARTS) {
      const policy = built[part.key];
      if (policy !== undefined && part.wire !== undefined)
        (part.wire as (policy: AnyPolicy, recorder: DependencyMetrics) => void)(policy, recorder);
    }
    const b = env.built;
    recorder.tracing?.watch({
      retry: b.retry,
      breaker: b.circuitBreaker,
      bulkhead: b.bulkhead,
      loadShedder: b.loadShedder,
      hedge: b.hedge,
      fallback: b.fallback,
      idempotency: b.idempotency,
      budget: env.budgetMs,
    });
  }
  return new DependencyPolicy(name, env.budgetMs, env.timeoutMs, env.built, composed, metricsStep);
}

/**
 * `defaults` must be a valid dependency config by itself (as the JSON Schema says), even in
 * sections every dependency overrides; with no budget of its own, its timeout is not held
 * to the default budget (each dependency checks it against its own).
 */
function validDefaults(
  defaults: Record<string, unknown>,
  clock: Clock | undefined,
  problems: ConfigProblem[],
): boolean {
  const before = problems.length;
  const alone = { budget: 'Infinity', ...defaults, clock };
  collect(problems, () => dependency('defaults', alone as DependencyConfig));
  return problems.length === before;
}

/** The plain-data config of `dependencies()`: `defaults`, then one section per dependency. */
export interface DependenciesConfig {
  /**
   * Merged under every dependency (a dependency's own keys win, section by section). It must
   * be a valid dependency config by itself.
   */
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
export function dependencies<
  C extends { defaults?: DependencyConfig } & { [K in keyof C]: DependencyConfig | undefined },
>(
  config: C & { [K in keyof C]: OnlyKnownKeys<C[K], DependencyConfig> },
  options: DependencyOptions = {},
): {
  [K in Exclude<keyof C, 'defaults'>]: Dependency<
    FallbackValueOf<C[K]> | FallbackValueOf<C['defaults' & keyof C]>
  >;
} {
  if (!isPlainObject(config))
    throw new ConfigError([
      { path: 'dependencies', expected: 'an object of dependency configs', got: config },
    ]);
  const problems: ConfigProblem[] = [];
  if (hasInheritedOptions(config))
    problems.push({ path: 'dependencies', expected: 'a plain object (own keys)', got: config });
  let defaults = (config as { defaults?: unknown }).defaults;
  if (defaults !== undefined && !isPlainObject(defaults))
    problems.push({ path: 'defaults', expected: 'an options object', got: defaults });
  else if (defaults !== undefined && !validDefaults(defaults, options.clock, problems))
    defaults = undefined; // reported once, under `defaults`, rather than in every dependency
  const out: Record<string, Dependency> = {};
  for (const [name, own] of Object.entries(config)) {
    if (name === 'defaults') continue;
    // JSON.parse makes "__proto__" an own key; written into `out` it would set the prototype.
    if (name === '__proto__') {
      problems.push({ path: name, got: own, ...PROTO_KEY_PROBLEM });
      continue;
    }
    if (!isPlainObject(own) || hasInheritedOptions(own)) {
      const expected = isPlainObject(own)
        ? 'options as own keys, not through __proto__'
        : 'an options object';
      problems.push({ path: name, expected, got: own });
      continue;
    }
    const merged: Record<string, unknown> = { ...(isPlainObject(defaults) ? defaults : {}) };
    for (const [key, value] of Object.entries(own)) {
      if (key === '__proto__') {
        problems.push({ path: `${name}.${key}`, got: value, ...PROTO_KEY_PROBLEM });
        continue;
      }
      const base = merged[key];
      merged[key] = isPlainObject(base) && isPlainObject(value) ? { ...base, ...value } : value;
    }
    const dep = collect(problems, () => dependency(name, { ...merged, ...options }));
    if (dep) out[name] = dep;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as never;
}
