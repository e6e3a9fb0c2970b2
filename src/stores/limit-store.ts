import { BulwarkError, brandClass } from '../core/errors.js';

/**
 * The contracts of the stores behind shared limits: a rate limit's slots
 * (`RateLimitStore`) and a fleet-wide bulkhead's leases (`ConcurrencyStore`). The in-memory
 * rate store is the default; `bulwark/redis` has one of each on Redis.
 */

/**
 * A rate limit in GCRA terms (the Generic Cell Rate Algorithm): one call per `interval` ms,
 * and up to `tolerance` ms of future slots may be taken at once (`burst × interval`).
 */
export interface GcraLimit {
  /** ms between two calls at the steady rate (`per / rate`). */
  readonly interval: number;
  /** How far ahead of the steady schedule a call may start, in ms (`burst × interval`). */
  readonly tolerance: number;
}

/** A rate store's answer to one acquire. */
export interface RateLimitGrant {
  /** True: the call may start once `waitMs` has passed; its slot is reserved. */
  readonly ok: boolean;
  /** ms to wait for the reserved slot (0: start now). */
  readonly waitMs: number;
  /** When refused: ms until the earliest slot (0 when granted). */
  readonly retryAfterMs: number;
  /** Identifies the reservation, for `cancel` (store-specific). */
  readonly token?: string | number;
  /** When the slot is, on the store's own clock (Redis: µs of server time); for diagnostics. */
  readonly slotTime?: number;
}

/** Where a rate limit keeps its state: one process (memory) or a whole fleet (Redis). */
export interface RateLimitStore {
  /** Named in errors, e.g. `RedisRateLimitStore(bulwark:rate)`. */
  readonly name: string;
  /**
   * Takes the earliest slot of `limit` under `key` if it is at most `maxWaitMs` away
   * (reserving it when it is in the future), else refuses with the time until it frees.
   * `now` is the caller's clock; a shared store may use its own (Redis uses server time).
   */
  acquire(
    key: string,
    limit: GcraLimit,
    maxWaitMs: number,
    now: number,
  ): RateLimitGrant | Promise<RateLimitGrant>;
  /**
   * Gives back a reserved slot whose caller left before it came (best effort: a store may
   * only undo its newest reservation; it never frees a slot another call holds).
   */
  cancel?(key: string, limit: GcraLimit, grant: RateLimitGrant): void;
}

/** A concurrency store's answer to one acquire. */
export interface ConcurrencyGrant {
  /** True: a slot (lease) is held until `release`. */
  readonly ok: boolean;
  /** Slots held fleet-wide when the store answered (when it knows). */
  readonly holders: number;
  /** The lease to hand back to `release` (store-specific). */
  readonly lease?: unknown;
}

/** Where a fleet-wide bulkhead keeps its leases. */
export interface ConcurrencyStore {
  /** Named in errors, e.g. `RedisConcurrencyStore(bulwark:conc)`. */
  readonly name: string;
  /** Takes one of `max` slots under `key`, in one round trip, or says none is free. */
  acquire(key: string, max: number): Promise<ConcurrencyGrant>;
  /** Hands a slot back; never throws (a lost release is recovered by the lease's expiry). */
  release(key: string, grant: ConcurrencyGrant): void;
}

/** What a Redis-backed limit store does when Redis fails or does not answer in time. */
export type StoreErrorMode = 'fail' | 'allow' | 'local';

/**
 * `ERR_LIMIT_STORE`: a shared limit's store (Redis) failed or did not answer within its
 * `timeout`, and the store is set to fail closed (`onStoreError: 'fail'`). `cause` holds the
 * store's own error, if any. A local refusal: retry does not retry it.
 */
export class LimitStoreError extends BulwarkError {
  static override readonly kind = 'LimitStoreError';
  /** The failing store's name, e.g. `RedisRateLimitStore(bulwark:rate)`. */
  readonly store: string;
  constructor(store: string, message: string, options?: { cause?: unknown }) {
    super('ERR_LIMIT_STORE', `${store}: ${message}`, options);
    this.store = store;
  }
}

brandClass(LimitStoreError);
