import { brandClass, BulwarkError } from '../../core/errors.js';

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
}

brandClass(LoadShedError);
