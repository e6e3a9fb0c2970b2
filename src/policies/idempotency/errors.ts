import { brandClass, BulwarkError } from '../../core/errors.js';

/** `ERR_IDEMPOTENCY_IN_PROGRESS`: another call with the same idempotency key is still running. */
export class IdempotencyInProgressError extends BulwarkError {
  static override readonly kind = 'IdempotencyInProgressError';
  constructor(message = 'a call with this idempotency key is still in progress') {
    super('ERR_IDEMPOTENCY_IN_PROGRESS', message);
  }
}

/**
 * `ERR_IDEMPOTENCY_KEY_REUSED`: the idempotency key was used before with a different request
 * fingerprint.
 */
export class IdempotencyKeyReuseError extends BulwarkError {
  static override readonly kind = 'IdempotencyKeyReuseError';
  constructor(message = 'idempotency key was reused with a different request fingerprint') {
    super('ERR_IDEMPOTENCY_KEY_REUSED', message);
  }
}

/**
 * `ERR_IDEMPOTENCY_STORE`: the idempotency store failed or did not answer in time; `cause` holds
 * the store's own error, if any.
 */
export class IdempotencyStoreError extends BulwarkError {
  static override readonly kind = 'IdempotencyStoreError';
  /** The failing store's name, e.g. `MemoryStore` or `RedisStore(bulwark:idem)`. */
  readonly store: string;
  constructor(store: string, message: string, options?: { cause?: unknown }) {
    super('ERR_IDEMPOTENCY_STORE', `${store}: ${message}`, options);
    this.store = store;
  }
}

for (const cls of [IdempotencyInProgressError, IdempotencyKeyReuseError, IdempotencyStoreError]) {
  brandClass(cls);
}
