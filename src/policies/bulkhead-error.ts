import { brandClass, BulwarkError } from '../core/errors.js';

/**
 * `'full'`: no free slot and no queue place; `'queue-timeout'`: waited `queueTimeout` for a slot in
 * vain.
 */
export type BulkheadRejectReason = 'full' | 'queue-timeout';

/** `ERR_BULKHEAD_FULL`: the bulkhead had no slot for the call (see `reason`). */
export class BulkheadRejectedError extends BulwarkError {
  static override readonly kind = 'BulkheadRejectedError';
  /** Why the call was turned away. */
  readonly reason: BulkheadRejectReason;
  constructor(reason: BulkheadRejectReason, message: string) {
    super('ERR_BULKHEAD_FULL', message);
    this.reason = reason;
  }
}

brandClass(BulkheadRejectedError);
