import { brandClass, BulwarkError } from '../core/errors.js';

/**
 * Thrown by `resilientFetch` with `throwOnStatus` when the final response (after any
 * retries) has an error status. The response's body is left unread for the caller: read
 * it (e.g. a problem+json body) or cancel it (`error.response.body?.cancel()`).
 */
export class HttpError extends BulwarkError {
  static override readonly kind = 'HttpError';
  /** The final response's status. */
  readonly status: number;
  /** The delay the server asked for in `Retry-After`, in ms, when it sent one. */
  readonly retryAfterMs: number | undefined;
  /** The final response, its body unread. */
  readonly response: Response;

  constructor(response: Response, retryAfterMs: number | undefined, what: string) {
    super(
      'ERR_HTTP_STATUS',
      `${what}: HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`,
    );
    this.status = response.status;
    this.retryAfterMs = retryAfterMs;
    this.response = response;
  }
}

brandClass(HttpError);
