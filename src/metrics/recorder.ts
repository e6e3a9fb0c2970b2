/**
 * What policies' events become in a metrics backend. The kernel knows this interface
 * only; `bulwark/prometheus` implements it. Implementations aggregate plain numbers on
 * the hot path and turn them into series at scrape time.
 */
import {
  PRIORITIES,
  type CallContext,
  type Operation,
  type Priority,
  type Step,
} from '../core/context.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Policy } from '../core/pipeline.js';
import type { BulkheadPolicy } from '../policies/bulkhead.js';
import type { CircuitBreakerPolicy } from '../policies/circuit-breaker/circuit-breaker.js';
import type { FallbackPolicy } from '../policies/fallback.js';
import type { HedgePolicy } from '../policies/hedge.js';
import type { IdempotencyPolicy } from '../policies/idempotency/idempotency.js';
import type { LoadShedderPolicy } from '../policies/load-shedder/load-shedder.js';
import type { RetryPolicy } from '../policies/retry/retry.js';

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

/** Where a queued message went, as the `outcome` label of `messages_total`. */
export const MESSAGE_OUTCOMES = [
  'processed',
  'retried',
  'deferred',
  'dead_lettered',
  'replayed',
] as const;
export type MessageOutcome = (typeof MESSAGE_OUTCOMES)[number];

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
  /** A queued message handled through the dependency ended with `outcome` (bulwark/queue). */
  recordMessage?(outcome: MessageOutcome): void;
  /** Read at scrape time: 1 while a queue consumer is paused for the dependency, else 0. */
  observeQueuePaused?(read: () => number): void;
  /** The dependency has a rate limit: its series exist (at 0) from now on. */
  observeRateLimit?(): void;
  /** The rate limit refused a call (optional: recorders written before rate limits lack it). */
  recordRateLimited?(): void;
  /** The rate limit held a call `seconds` for its slot (only paced calls are recorded). */
  recordRateLimitWait?(seconds: number): void;
  /**
   * Optional. `false` while the backend records nothing at all (OpenTelemetry with no SDK
   * registered): `dependency()` then skips timing the call, so an idle backend costs one
   * property read per call. Absent means always on.
   */
  readonly enabled?: boolean;
  /**
   * Optional per-call hooks, for backends that follow each call (tracing). Absent: no
   * per-call cost beyond the aggregate methods above.
   */
  readonly tracing?: CallTracing;
}

/** One dependency's policies and budget, as `CallTracing.watch` receives them (unconfigured: absent). */
export interface TracedPolicies {
  retry?: RetryPolicy | undefined;
  breaker?: CircuitBreakerPolicy | undefined;
  bulkhead?: BulkheadPolicy | undefined;
  loadShedder?: LoadShedderPolicy | undefined;
  hedge?: HedgePolicy | undefined;
  fallback?: FallbackPolicy | undefined;
  idempotency?: IdempotencyPolicy | undefined;
  /** The whole-call budget in ms (Infinity: none). */
  budget?: number;
}

/**
 * How a tracing backend follows each logical call of a dependency. `dependency()` starts
 * every call with `startCall` (outermost), places `attempt` innermost (so it sees each run
 * of `fn`: every retry and every hedge), and hands the policies to `watch` once. Per-call
 * state lives on the call's context, never in the backend.
 */
export interface CallTracing {
  /** One logical call starts; `undefined` when this call is not traced (e.g. not sampled). */
  startCall(ctx: CallContext): TracedCall | undefined;
  /** The innermost step: runs one attempt of a traced call in the attempt's own scope. */
  readonly attempt: Policy;
  /** Subscribes to the policies' events, to record each decision on the call it belongs to. */
  watch(policies: TracedPolicies): void;
}

/** One traced call, from `CallTracing.startCall`. */
export interface TracedCall {
  /** Runs the rest of the call in this call's scope; settles exactly as `next.invoke` does. */
  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T>;
  /** The call ended with `outcome`; `error` is what it rejected with (undefined on success). */
  end(outcome: CallOutcome, error: unknown): void;
}

/**
 * A metrics backend: pass one as the `metrics` option of `dependency()` or
 * `dependencies()`. `prometheusMetrics()` from `bulwark/prometheus` is one.
 */
export interface MetricsProvider {
  /** The recorder for one dependency; the same object for the same name. */
  forDependency(name: string): DependencyMetrics;
  /**
   * Optional, for tracing backends: runs one inbound request's handling inside a server
   * span (continued from its `traceparent`). The HTTP server helpers call it per request.
   */
  traceRequest?<T>(req: IncomingMessage, res: ServerResponse, handle: () => T): T;
  /**
   * Optional, for tracing backends: adds the current attempt's trace context to an outgoing
   * request's headers. `resilientFetch` and `httpClient` call it per attempt.
   */
  injectTraceContext?(headers: Headers): void;
}
