/**
 * Every attribute and event name bulwark writes to OpenTelemetry, under one prefix. The
 * values are bounded (names, numbers and small enums): never keys, URLs or messages, so the
 * same names are safe as metric attributes.
 */

/** The dependency's name, as given to `dependency()`. */
export const DEPENDENCY = 'bulwark.dependency';
/** How the call (or attempt) ended: success, failure, timeout, short_circuited, rejected, shed, fallback; attempts also aborted, abandoned. */
export const OUTCOME = 'bulwark.outcome';
/** The call's priority: critical, high, normal, low. */
export const PRIORITY = 'bulwark.priority';
/** ms the call had left when it started (the tighter of the caller's deadline and the dependency's budget). */
export const BUDGET_REMAINING_MS = 'bulwark.budget.remaining_ms';
/** Attempt number: 1 for the first, 2 for the first retry, … (hedges share their attempt's number). */
export const ATTEMPT = 'bulwark.attempt';
/** Attempts the call made (retries included, hedges not). */
export const ATTEMPTS = 'bulwark.attempts';
/** 0 for an attempt's first run, 1… for its hedges. */
export const HEDGE = 'bulwark.hedge';
/** Why a hedge started: delay (no answer in time) or failure (a sibling failed). */
export const HEDGE_REASON = 'bulwark.hedge.reason';
/** ms the attempt had before its timeout (or the call's budget) ran out. */
export const ATTEMPT_TIMEOUT_MS = 'bulwark.attempt.timeout_ms';
/** ms slept before a retry. */
export const RETRY_DELAY_MS = 'bulwark.retry.delay_ms';
/** What made the retry: error, timeout, status. */
export const RETRY_REASON = 'bulwark.retry.reason';
/** ms the server asked for (Retry-After), when it did. */
export const RETRY_AFTER_MS = 'bulwark.retry.retry_after_ms';
/** Why retrying stopped: attempts, deadline, budget, not-retryable. */
export const GIVE_UP_REASON = 'bulwark.retry.give_up_reason';
/** Breaker state: closed, open, half-open, isolated. */
export const CIRCUIT_STATE = 'bulwark.circuit.state';
/** Breaker state before a transition. */
export const CIRCUIT_FROM = 'bulwark.circuit.from';
/** Breaker state after a transition. */
export const CIRCUIT_TO = 'bulwark.circuit.to';
/** Calls waiting in the bulkhead queue, this one included. */
export const BULKHEAD_QUEUED = 'bulwark.bulkhead.queued';
/** ms the call waited in the bulkhead queue. */
export const BULKHEAD_WAIT_MS = 'bulwark.bulkhead.wait_ms';
/** Why the bulkhead refused: full, queue-timeout, or abandoned (the call ended while queued). */
export const BULKHEAD_REASON = 'bulwark.bulkhead.reason';
/** Why the load shedder refused: capacity, priority, deadline, event-loop. */
export const SHED_REASON = 'bulwark.shed.reason';
/** The idempotency store's name. */
export const IDEMPOTENCY_STORE = 'bulwark.idempotency.store';
/** What the idempotency policy did: executed, replayed, in_progress, key_reused. */
export const IDEMPOTENCY_RESULT = 'bulwark.idempotency.result';
/** What the fallback replaced: error or result. */
export const FALLBACK_KIND = 'bulwark.fallback.kind';

/** Span event names, one per policy decision. */
export const EVENTS = {
  retry: 'bulwark.retry',
  retryBudgetExhausted: 'bulwark.retry.budget_exhausted',
  giveUp: 'bulwark.retry.give_up',
  circuitRejected: 'bulwark.circuit.rejected',
  circuitStateChange: 'bulwark.circuit.state_change',
  bulkheadQueued: 'bulwark.bulkhead.queued',
  bulkheadDequeued: 'bulwark.bulkhead.dequeued',
  bulkheadRejected: 'bulwark.bulkhead.rejected',
  shed: 'bulwark.shed',
  hedge: 'bulwark.hedge',
  hedgeWon: 'bulwark.hedge.won',
  idempotency: 'bulwark.idempotency',
  fallback: 'bulwark.fallback',
} as const;
