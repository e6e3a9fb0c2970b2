import { isAbortError, isBulwarkError, TimeoutError } from '../../core/errors.js';

/** Network error codes worth another attempt (Node's and undici's). */
const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** HTTP statuses that say "try again": the server did not process the request, or is overloaded. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);

/**
 * Reads a numeric HTTP status from `status`, `statusCode` or `response.status`, the
 * places HTTP clients' errors and responses keep it.
 *
 * @example
 * ```ts
 * import { statusOf } from 'bulwark';
 *
 * statusOf({ statusCode: 503 }); // 503
 * statusOf({ response: { status: 429 } }); // 429 (an axios-style error)
 * statusOf(new Error('socket hang up')); // undefined
 * ```
 */
export function statusOf(value: unknown): number | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as { status?: unknown; statusCode?: unknown; response?: { status?: unknown } };
  if (typeof v.status === 'number') return v.status;
  if (typeof v.statusCode === 'number') return v.statusCode;
  if (
    typeof v.response === 'object' &&
    v.response !== null &&
    typeof v.response.status === 'number'
  ) {
    return v.response.status;
  }
  return undefined;
}

/**
 * Codes of bulwark's local refusals (open breaker, full bulkhead, shed load, rate limit, an
 * unavailable limit store): the dependency never saw the call, and another attempt would only
 * add to the local overload that refused it.
 */
export const LOCAL_REJECTION_CODES: ReadonlySet<string> = new Set([
  'ERR_CIRCUIT_OPEN',
  'ERR_BULKHEAD_FULL',
  'ERR_LOAD_SHED',
  'ERR_RATE_LIMITED',
  'ERR_LIMIT_STORE',
]);

function codeOf(value: unknown): string | undefined {
  const code = (value as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The default retry classification for a thrown error: attempt timeouts, transient
 * network errors, retryable HTTP statuses, and errors flagged `retryable: true`. Never the caller's abort, never local
 * overload (open breaker, full bulkhead, shed load), never 4xx validation/auth errors.
 * Retrying into local overload would only add to it.
 *
 * @example
 * ```ts
 * import { isRetryableError, retry, statusOf } from 'bulwark';
 *
 * // The default rules, plus a 409 this API resolves on its own after a moment.
 * const policy = retry({
 *   retryOn: (outcome, _ctx, kind) =>
 *     kind === 'error' && (isRetryableError(outcome) || statusOf(outcome) === 409),
 * });
 * ```
 */
export function isRetryableError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  if (isBulwarkError(error)) {
    if (LOCAL_REJECTION_CODES.has(error.code)) return false;
    return error instanceof TimeoutError && error.scope === 'attempt';
  }
  if (isAbortError(error)) return false;
  // An error that says so itself (e.g. bulwark/http's failure for a configured retryable status).
  if ((error as { retryable?: unknown }).retryable === true) return true;
  const code = codeOf(error);
  if (code !== undefined && RETRYABLE_CODES.has(code)) return true;
  // fetch() wraps socket errors: TypeError('fetch failed') with the real one as cause.
  const causeCode = codeOf((error as { cause?: unknown }).cause);
  if (causeCode !== undefined && RETRYABLE_CODES.has(causeCode)) return true;
  const status = statusOf(error);
  return status !== undefined && RETRYABLE_STATUSES.has(status);
}

/**
 * The default for a returned value: only an HTTP response object (numeric `status` and
 * a `headers.get`) with a retryable status. Plain results are never retried. `retry()`
 * inspects results only when given a `retryOn`, so pass it there to retry responses.
 *
 * @example
 * ```ts
 * import { isRetryableError, isRetryableResult, retry } from 'bulwark';
 *
 * // Retry Responses with a 503, 429, … too; when attempts run out, the last one is returned.
 * const policy = retry({
 *   retryOn: (outcome, _ctx, kind) =>
 *     kind === 'error' ? isRetryableError(outcome) : isRetryableResult(outcome),
 * });
 * const res = await policy.execute((ctx) =>
 *   fetch('https://catalog.internal/items', { signal: ctx.signal }),
 * );
 * ```
 */
export function isRetryableResult(result: unknown): boolean {
  if (typeof result !== 'object' || result === null) return false;
  const r = result as { status?: unknown; headers?: { get?: unknown } };
  return (
    typeof r.status === 'number' &&
    typeof r.headers?.get === 'function' &&
    RETRYABLE_STATUSES.has(r.status)
  );
}

/** Server-requested delay carried by an error or result (`retryAfterMs`), if any. */
export function retryAfterOf(value: unknown): number | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const ms = (value as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof ms === 'number' && ms >= 0 && Number.isFinite(ms) ? ms : undefined;
}

/**
 * Why a retry happened, as a bounded metrics label: an attempt timeout, an HTTP status, or another
 * error.
 */
export type RetryReason = 'error' | 'timeout' | 'status';

/** Why a retry happened, as a bounded metrics label. */
export function retryReasonOf(outcome: unknown): RetryReason {
  if (outcome instanceof TimeoutError) return 'timeout';
  return statusOf(outcome) !== undefined ? 'status' : 'error';
}
