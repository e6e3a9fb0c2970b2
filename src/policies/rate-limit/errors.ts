import { BulwarkError, brandClass, formatMs } from '../../core/errors.js';

/**
 * `ERR_RATE_LIMITED`: the rate limit had no slot for the call now, and none it could wait for
 * within `wait` and the call's budget. A local refusal: the dependency never saw the call, and
 * retry does not retry it.
 */
export class RateLimitError extends BulwarkError {
  static override readonly kind = 'RateLimitError';
  /** ms until the limit admits a call again (the earliest slot, as far as this process knows). */
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number) {
    super('ERR_RATE_LIMITED', message);
    this.retryAfterMs = retryAfterMs;
  }
}

brandClass(RateLimitError);

/** The message of a rate-limit refusal: who refused, which limit, and when to come back. */
export function rateLimitMessage(
  who: string | undefined,
  limit: string,
  retryAfterMs: number,
): string {
  const what = `rate limit of ${limit} reached; next slot in ${formatMs(retryAfterMs)}`;
  return who === undefined ? what : `${who}: ${what}`;
}

/** Builds a RateLimitError without a stack trace: refusals come in floods exactly when it hurts. */
export function rateLimitError(message: string, retryAfterMs: number): RateLimitError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new RateLimitError(message, retryAfterMs);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
