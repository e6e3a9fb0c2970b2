import { brandClass, BulwarkError } from '../../core/errors.js';
import { stacklessErrorOf } from '../../core/fail-fast.js';

/**
 * Why load was shed: the limit was reached (`capacity`), the call's priority had used
 * its share (`priority`), too little time was left (`deadline`), or the event loop lagged
 * (`event-loop`).
 */
export type LoadShedReason = 'capacity' | 'priority' | 'deadline' | 'event-loop';

/** `ERR_LOAD_SHED`: a load shedder or adaptive throttle refused the call before any work. */
export class LoadShedError extends BulwarkError {
  static override readonly kind = 'LoadShedError';
  /** Which check refused the call. */
  readonly reason: LoadShedReason;
  /** Suggested wait before trying again, when the shedder can tell. */
  readonly retryAfterMs: number | undefined;
  constructor(reason: LoadShedReason, message: string, retryAfterMs?: number) {
    super('ERR_LOAD_SHED', message);
    this.reason = reason;
    this.retryAfterMs = retryAfterMs;
  }

  /**
   * The same error for a per-call refusal, built without a stack or the Error constructor.
   * @internal
   */
  static refusal(
    reason: LoadShedReason,
    message: string,
    retryAfterMs: number | undefined,
  ): LoadShedError {
    const e = new StacklessLoadShed(message) as Writable;
    e.code = 'ERR_LOAD_SHED';
    e.reason = reason;
    e.retryAfterMs = retryAfterMs;
    return e;
  }
}

brandClass(LoadShedError);

type Writable = { -readonly [K in keyof LoadShedError]: LoadShedError[K] };
const StacklessLoadShed = stacklessErrorOf(LoadShedError);
