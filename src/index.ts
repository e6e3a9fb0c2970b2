// Public API of 'bulwark': re-exports only.
export { systemClock, type Clock, type TimerHandle } from './core/clock.js';
export type { Context, Operation, Priority } from './core/context.js';
export {
  pipeline,
  type AnyPolicy,
  type ExecuteOptions,
  type Pipeline,
  type Policy,
  type SubstituteOf,
} from './core/pipeline.js';
export {
  BulwarkError,
  ConfigError,
  TimeoutError,
  isBulwarkError,
  type BulwarkErrorCode,
  type ConfigProblem,
  type TimeoutScope,
} from './core/errors.js';
export { BulkheadRejectedError, type BulkheadRejectReason } from './policies/bulkhead-error.js';
export { CircuitOpenError } from './policies/circuit-breaker/errors.js';
export {
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  IdempotencyStoreError,
} from './policies/idempotency/errors.js';
export { LoadShedError, type LoadShedReason } from './policies/load-shedder/errors.js';
export type { Disposable, Listener, Subscription } from './core/events.js';
export { parseDuration, toMs } from './core/duration.js';
export { timeout, TimeoutPolicy, type TimeoutOptions } from './policies/timeout.js';
export { budget, type BudgetOptions } from './policies/budget.js';
export {
  retry,
  RetryPolicy,
  type GiveUpReason,
  type RetryEvents,
  type RetryOptions,
} from './policies/retry/retry.js';
export {
  exponentialBackoff,
  type BackoffFunction,
  type BackoffOption,
  type ExponentialBackoffOptions,
  type Jitter,
} from './policies/retry/backoff.js';
export {
  retryBudget,
  RetryBudget,
  type RetryBudgetOptions,
} from './policies/retry/retry-budget.js';
export {
  isRetryableError,
  isRetryableResult,
  RETRYABLE_STATUSES,
  statusOf,
  type RetryReason,
} from './policies/retry/classification.js';
export {
  bulkhead,
  BulkheadPolicy,
  type BulkheadEvents,
  type BulkheadOptions,
} from './policies/bulkhead.js';
export {
  fallback,
  FallbackPolicy,
  type FallbackEvents,
  type FallbackFunction,
  type FallbackKind,
  type FallbackOptions,
} from './policies/fallback.js';
export {
  hedge,
  HedgePolicy,
  type HedgeEvents,
  type HedgeOptions,
  type HedgeReason,
} from './policies/hedge.js';
export {
  circuitBreaker,
  CircuitBreakerPolicy,
} from './policies/circuit-breaker/circuit-breaker.js';
export type {
  BreakerState,
  CircuitBreakerEvents,
  CircuitBreakerStats,
  IsolationHandle,
} from './policies/circuit-breaker/controller.js';
export type {
  CircuitBreakerOptions,
  CountWindowOptions,
  HalfOpenBackoffOptions,
  SlowStartOptions,
  TimeWindowOptions,
  WhileOpenOptions,
} from './policies/circuit-breaker/options.js';
export {
  loadShedder,
  LoadShedderPolicy,
  EventLoopDelayProbe,
  eventLoopPressure,
  type LoadShedderEvents,
  type LoadShedderOptions,
  type LoadShedderQueueOptions,
  type PressureProbe,
} from './policies/load-shedder/load-shedder.js';
export {
  adaptive,
  type AdaptiveAlgorithm,
  type AdaptiveOptions,
} from './policies/load-shedder/limits/adaptive.js';
export { fixedLimit, FixedLimiter } from './policies/load-shedder/limits/fixed.js';
export {
  AdaptiveLimiter,
  type AdaptiveBounds,
  type LimitSample,
  type Limiter,
} from './policies/load-shedder/limits/limiter.js';
export { GradientLimiter, type GradientOptions } from './policies/load-shedder/limits/gradient.js';
export { AimdLimiter, type AimdOptions } from './policies/load-shedder/limits/aimd.js';
export { VegasLimiter, type VegasOptions } from './policies/load-shedder/limits/vegas.js';
export {
  adaptiveThrottle,
  AdaptiveThrottlePolicy,
  isOverloadRejection,
  type AdaptiveThrottleEvents,
  type AdaptiveThrottleOptions,
} from './policies/load-shedder/adaptive-throttle.js';
export {
  dependency,
  dependencies,
  DEFAULT_BUDGET_MS,
  type Dependency,
  type DependencyConfig,
  type DependenciesConfig,
  type DependencyOptions,
  type FallbackValueOf,
} from './dependency.js';
export { dependencyConfigSchema } from './config-schema.js';
export type { CallOutcome, DependencyMetrics, MetricsProvider } from './metrics/recorder.js';
export {
  idempotency,
  IdempotencyPolicy,
  jsonSerializer,
  type IdempotencyEvents,
  type IdempotencyOptions,
  type Serializer,
} from './policies/idempotency/idempotency.js';
export { MemoryStore, memoryStore, type MemoryStoreOptions } from './stores/memory.js';
export {
  scopedKey,
  type ClaimResult,
  type IdempotencyRecord,
  type IdempotencyStore,
  type StoreEntry,
} from './stores/store.js';
export { setAmbientContextProvider, type AmbientContextProvider } from './core/ambient.js';
export {
  rateLimit,
  RateLimitPolicy,
  type RateLimitEvents,
  type RateLimitOptions,
} from './policies/rate-limit/rate-limit.js';
export { RateLimitError } from './policies/rate-limit/errors.js';
export { MemoryRateLimitStore } from './policies/rate-limit/memory-store.js';
export {
  LimitStoreError,
  type ConcurrencyGrant,
  type ConcurrencyStore,
  type GcraLimit,
  type RateLimitGrant,
  type RateLimitStore,
  type StoreErrorMode,
} from './stores/limit-store.js';
