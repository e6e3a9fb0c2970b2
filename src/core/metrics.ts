/**
 * What policies' events become in a metrics backend. The kernel knows this interface
 * only; `bulwark/prometheus` implements it. Implementations aggregate plain numbers on
 * the hot path and turn them into series at scrape time.
 */
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

/** One dependency's recorder. Every method is O(1) and allocation-free. */
export interface DependencyMetrics {
  readonly dependency: string;
  recordCall(outcome: CallOutcome, seconds: number): void;
  recordRetry(reason: RetryMetricReason): void;
  recordRetryBudgetExhausted(): void;
  recordCircuitTransition(from: CircuitStateName, to: CircuitStateName): void;
  /** Read at scrape time. */
  observeCircuitState(read: () => CircuitStateName): void;
  /** Read at scrape time. */
  observeBulkhead(read: () => { inFlight: number; queued: number }): void;
  recordLoadShed(priority: ShedPriority, reason: ShedReason): void;
  /** Read at scrape time. */
  observeConcurrencyLimit(read: () => number): void;
  recordIdempotency(store: string, result: IdempotencyResult): void;
}

export interface MetricsProvider {
  /** The recorder for one dependency; the same object for the same name. */
  forDependency(name: string): DependencyMetrics;
}
