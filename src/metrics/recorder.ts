/**
 * What policies' events become in a metrics backend. The kernel knows this interface
 * only; `bulwark/prometheus` implements it. Implementations aggregate plain numbers on
 * the hot path and turn them into series at scrape time.
 */
import { PRIORITIES, type Priority } from '../core/context.js';

/** How a call through a dependency ended, as the `outcome` label of `calls_total`. */
export const CALL_OUTCOMES = [
  'success',
  'failure',
  'timeout',
  'short_circuited',
  'rejected',
  'shed',
  'fallback',
] as const;
export type CallOutcome = (typeof CALL_OUTCOMES)[number];

export const RETRY_REASONS = ['error', 'timeout', 'status'] as const;
export type RetryMetricReason = (typeof RETRY_REASONS)[number];

export const CIRCUIT_STATES = ['closed', 'open', 'half-open', 'isolated'] as const;
export type CircuitStateName = (typeof CIRCUIT_STATES)[number];

export const SHED_PRIORITIES: readonly Priority[] = PRIORITIES;
export type ShedPriority = Priority;
export const SHED_REASONS = ['capacity', 'priority', 'deadline', 'event-loop'] as const;
export type ShedReason = (typeof SHED_REASONS)[number];

export const IDEMPOTENCY_RESULTS = ['executed', 'replayed', 'in_progress', 'key_reused'] as const;
export type IdempotencyResult = (typeof IDEMPOTENCY_RESULTS)[number];

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
  /** The idempotency policy executed, replayed or refused a keyed call (labelled with this dependency). */
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
