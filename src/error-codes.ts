/**
 * Every stable `code` a bulwark error carries, one per error class. The kernel's
 * BulwarkError only knows that a code is one of these strings; which class raises which
 * code lives beside that class (core/errors.ts, each policy's errors, http/errors.ts).
 */
export type BulwarkErrorCode =
  | 'ERR_TIMEOUT'
  | 'ERR_CIRCUIT_OPEN'
  | 'ERR_BULKHEAD_FULL'
  | 'ERR_LOAD_SHED'
  | 'ERR_RATE_LIMITED'
  | 'ERR_LIMIT_STORE'
  | 'ERR_IDEMPOTENCY_IN_PROGRESS'
  | 'ERR_IDEMPOTENCY_KEY_REUSED'
  | 'ERR_IDEMPOTENCY_STORE'
  | 'ERR_CONFIG'
  | 'ERR_HTTP_STATUS';
