/**
 * What policies' events become in a metrics backend. The kernel knows this interface
 * only; `bulwark/prometheus` implements it. Implementations aggregate plain numbers on
 * the hot path and turn them into series at scrape time.
 */
/** How a call through a dependency ended, as the `outcome` label of `calls_total`. */
export type CallOutcome =
  'success' | 'failure' | 'timeout' | 'short_circuited' | 'rejected' | 'shed' | 'fallback';
export const CALL_OUTCOMES: readonly CallOutcome[] = [
  'success',
  'failure',
  'timeout',
  'short_circuited',
  'rejected',
  'shed',
  'fallback',
];

export type RetryMetricReason = 'error' | 'timeout' | 'status';
export const RETRY_REASONS: readonly RetryMetricReason[] = ['error', 'timeout', 'status'];

export type CircuitStateName = 'closed' | 'open' | 'half-open' | 'isolated';
export const CIRCUIT_STATES: readonly CircuitStateName[] = [
  'closed',
  'open',
  'half-open',
  'isolated',
];

export type ShedPriority = 'critical' | 'high' | 'normal' | 'low';
export type ShedReason = 'capacity' | 'priority' | 'deadline' | 'event-loop';
export const SHED_PRIORITIES: readonly ShedPriority[] = ['critical', 'high', 'normal', 'low'];
export const SHED_REASONS: readonly ShedReason[] = [
  'capacity',
  'priority',
  'deadline',
  'event-loop',
];

export type IdempotencyResult = 'executed' | 'replayed' | 'in_progress' | 'key_reused';
export const IDEMPOTENCY_RESULTS: readonly IdempotencyResult[] = [
  'executed',
  'replayed',
  'in_progress',
  'key_reused',
];

/**
 * One dependency's recorder. Every method is O(1) and allocation-free. `dependency()`
 * calls it; implement it only to send bulwark's metrics to another backend.
 */
export interface DependencyMetrics {
  /** The dependency's name, as the `dependency` label. */
  readonly dependency: string;
  /** A call ended with `outcome` after `seconds`. */
  recordCall(outcome: CallOutcome, seconds: number): void;
  /** A retry is about to happen, for `reason`. */
  recordRetry(reason: RetryMetricReason): void;
  /** The retry budget refused a retry. */
  recordRetryBudgetExhausted(): void;
  /** The circuit breaker moved from one state to another. */
  recordCircuitTransition(from: CircuitStateName, to: CircuitStateName): void;
  /** Read at scrape time. */
  observeCircuitState(read: () => CircuitStateName): void;
  /** Read at scrape time. */
  observeBulkhead(read: () => { inFlight: number; queued: number }): void;
  /** The load shedder refused a call of `priority`, for `reason`. */
  recordLoadShed(priority: ShedPriority, reason: ShedReason): void;
  /** Read at scrape time. */
  observeConcurrencyLimit(read: () => number): void;
  /** The idempotency policy executed, replayed or refused a keyed call. */
  recordIdempotency(store: string, result: IdempotencyResult): void;
}

/**
 * A metrics backend: pass one as the `metrics` option of `dependency()` or
 * `dependencies()`. `prometheusMetrics()` from `bulwark/prometheus` is one.
 */
export interface MetricsProvider {
  /** The recorder for one dependency; the same object for the same name. */
  forDependency(name: string): DependencyMetrics;
}
