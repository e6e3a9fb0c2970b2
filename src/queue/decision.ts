import { isBulwarkError } from '../core/errors.js';
import { isRetryableError, statusOf } from '../policies/retry/classification.js';

/**
 * What a queue adapter must do with a delivered message:
 * - `done`: acknowledge it (the handler succeeded, or its stored outcome was replayed);
 * - `retry`: redeliver it after `delayMs`, counting a delivery;
 * - `defer`: the dependency is unavailable; redeliver after `delayMs` without counting one;
 * - `dead-letter`: move it aside with `error`; it will not be delivered again.
 */
export type MessageAction = 'done' | 'retry' | 'defer' | 'dead-letter';

/** Why a message was dead-lettered. */
export type DeadLetterReason = 'not-retryable' | 'max-deliveries';

/** The handler's verdict on one delivery; the adapter carries it out. */
export interface Decision<R = unknown> {
  readonly action: MessageAction;
  /** For `retry` and `defer`: how long to wait before the message is delivered again, in ms. */
  readonly delayMs?: number;
  /** For `retry`, `defer` and `dead-letter`: the failure (or refusal) behind the decision. */
  readonly error?: unknown;
  /** For `dead-letter`. */
  readonly reason?: DeadLetterReason;
  /** For `done`: the handler's result (or the stored one, when `replayed`). */
  readonly result?: R;
  /** For `done`: the outcome was already stored by an earlier delivery; the handler did not run. */
  readonly replayed?: boolean;
  /** The counted delivery this decision ends (1 for the first; deferrals do not count). */
  readonly deliveries: number;
  /** Clock time of the decision, in epoch ms: adapters record it as the failure time. */
  readonly at: number;
}

/** How a failure is carried out: counted, not counted, or never again. */
export type FailureKind = 'retry' | 'defer' | 'dead-letter';

/**
 * Refusals that say the dependency is unavailable right now, not that the message is bad:
 * an open breaker, shed load, a full bulkhead, a rate limit, a duplicate still running or
 * an idempotency store that did not answer. Redelivering later is the whole remedy.
 */
const UNAVAILABLE: ReadonlySet<string> = new Set([
  'ERR_CIRCUIT_OPEN',
  'ERR_LOAD_SHED',
  'ERR_BULKHEAD_FULL',
  'ERR_RATE_LIMITED',
  'ERR_IDEMPOTENCY_IN_PROGRESS',
  'ERR_IDEMPOTENCY_STORE',
]);

/**
 * The default classification of a message failure. Bulwark's own refusals (by `code`) are
 * deferrals; its timeouts are retries; a configuration error or a reused key is dead. For
 * the handler's own errors: an HTTP status that is not retryable (a 400-class answer),
 * `retryable: false`, BullMQ's `UnrecoverableError`, or a programming error (TypeError,
 * SyntaxError, RangeError, ReferenceError) is a poison message, dead-lettered at once;
 * anything else is retried, because a queue's unknown failure is more often transient
 * than not and `maxDeliveries` bounds the cost of being wrong.
 */
export function classifyFailure(error: unknown): FailureKind {
  if (isBulwarkError(error)) {
    if (UNAVAILABLE.has(error.code)) return 'defer';
    if (error.code === 'ERR_TIMEOUT') return 'retry';
    if (error.code === 'ERR_HTTP_STATUS') return isRetryableError(error) ? 'retry' : 'dead-letter';
    return 'dead-letter';
  }
  if (isRetryableError(error)) return 'retry';
  if (typeof error !== 'object' || error === null) return 'retry';
  if ((error as { retryable?: unknown }).retryable === false) return 'dead-letter';
  if (statusOf(error) !== undefined) return 'dead-letter';
  const name = (error as { name?: unknown }).name;
  if (
    name === 'UnrecoverableError' ||
    name === 'TypeError' ||
    name === 'SyntaxError' ||
    name === 'RangeError' ||
    name === 'ReferenceError'
  ) {
    // fetch() reports a refused connection as TypeError('fetch failed'): isRetryableError
    // above already took those by their cause's code.
    return 'dead-letter';
  }
  return 'retry';
}

/** A failure as plain data, safe to store on a dead-letter job or stream entry. */
export interface FailureRecord {
  name: string;
  message: string;
  code?: string;
  status?: number;
}

/** Describes a failure as plain data (never the stack: it says nothing the reason does not). */
export function failureRecord(error: unknown): FailureRecord {
  if (typeof error !== 'object' || error === null) {
    return { name: 'Error', message: String(error) };
  }
  const e = error as { name?: unknown; message?: unknown; code?: unknown };
  const record: FailureRecord = {
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' ? e.message : String(error),
  };
  if (typeof e.code === 'string') record.code = e.code;
  const status = statusOf(error);
  if (status !== undefined) record.status = status;
  return record;
}
