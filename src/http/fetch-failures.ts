// The failures resilientFetch raises inside the pipeline, and the retry rule that reads them.
import type { Context } from '../core/context.js';
import { isRetryableError } from '../policies/retry/classification.js';

/**
 * Inside the pipeline, a response with a failing status (see `retryStatuses`): it carries
 * `status` and `retryAfterMs`, which the retry policy reads, and the response itself.
 * `resilientFetch` turns it back into the response (or an `HttpError`) at the end.
 */
export class HttpStatusFailure extends Error {
  /** Always `'HttpStatusFailure'`. */
  override readonly name = 'HttpStatusFailure';
  /** Only statuses configured as retryable become this failure: the default retry classification honours the flag. */
  readonly retryable = true;
  /** The response's status. */
  readonly status: number;
  /**
   * The delay its `Retry-After` asked for, in ms: the retry policy waits this long instead of its
   * backoff.
   */
  readonly retryAfterMs: number | undefined;
  /** The response itself, body unread. */
  readonly response: Response;
  constructor(response: Response, retryAfterMs: number | undefined) {
    super(`HTTP ${response.status}`);
    this.status = response.status;
    this.retryAfterMs = retryAfterMs;
    this.response = response;
  }
}

/**
 * Inside the pipeline, the failure of a request that must not be sent again (a POST
 * without an idempotency key that reached the server). It deliberately has no status,
 * code or cause for the retry classification to find: breakers still count it as a
 * failure, retries and hedges leave it alone. `failure` is the original outcome.
 */
export class NotRepeatableFailure extends Error {
  /** Always `'NotRepeatableFailure'`. */
  override readonly name = 'NotRepeatableFailure';
  /** @param failure - The request's original failure (an error, or an `HttpStatusFailure`). */
  constructor(readonly failure: unknown) {
    super('the request may have reached the server and is not safe to send again');
  }
}

/**
 * A `retryOn` for HTTP dependencies: retries every failing status of the client's
 * `retryStatuses` (not only the default ones) and whatever `isRetryableError` retries;
 * never a request that must not be repeated, never a returned response. The default
 * classification already does as much: use this as the base of a `retryOn` of your own.
 *
 * @example
 * ```ts
 * import { dependency, statusOf } from 'bulwark';
 * import { httpClient, isRetryableHttpError } from 'bulwark/http';
 *
 * // The HTTP rules, except 429: this API sends it once the day's quota is spent.
 * const maps = dependency('maps', {
 *   retry: {
 *     retryOn: (outcome, ctx, kind) =>
 *       isRetryableHttpError(outcome, ctx, kind) && statusOf(outcome) !== 429,
 *   },
 * });
 * const api = httpClient(maps);
 * ```
 */
export function isRetryableHttpError(
  outcome: unknown,
  _ctx?: Context,
  kind: 'error' | 'result' = 'error',
): boolean {
  if (kind !== 'error') return false;
  if (outcome instanceof HttpStatusFailure) return true;
  if (outcome instanceof NotRepeatableFailure) return false;
  return isRetryableError(outcome);
}
