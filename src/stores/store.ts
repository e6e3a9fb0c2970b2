import type { Disposable } from '../core/events.js';

/**
 * The stored outcome of one idempotent operation. `body` is the serializer's text; the
 * store keeps it opaque and returns it byte for byte.
 */
export interface IdempotencyRecord {
  /** `value` for a returned result, `error` for a stored (non-retryable) failure. */
  readonly outcome: 'value' | 'error';
  /** The serialized outcome, returned byte for byte. */
  readonly body: string;
}

/** What `claim` found: the caller may run the operation only on `claimed`. */
export type ClaimResult =
  | { readonly state: 'claimed'; readonly token: string }
  | {
      readonly state: 'in-progress';
      /** ms until the holder's lock expires, when the store can tell. */
      readonly lockRemaining?: number;
    }
  | { readonly state: 'completed'; readonly record: IdempotencyRecord }
  | { readonly state: 'mismatch' };

/** What `get` returns for a live entry. */
export type StoreEntry =
  | { readonly state: 'in-progress'; readonly fingerprint: string }
  | {
      readonly state: 'completed';
      readonly fingerprint: string;
      readonly record: IdempotencyRecord;
    };

/**
 * The contract every idempotency store keeps; `storeConformance()` in `bulwark/testing`
 * checks it. Keys live in the store's own namespace (its `prefix`) and, when `scope` is
 * given, in that tenant's/user's namespace inside it: the same key under two scopes names
 * two independent entries. A missing fingerprint is stored and compared as `''`.
 */
export interface IdempotencyStore {
  /** Names the store in errors and metrics labels, e.g. `MemoryStore`, `RedisStore(app:idem)`. */
  readonly name: string;
  /**
   * Atomically: if the key is free (absent, or its lock or record expired) lock it for
   * `lockTtl` ms and return a fresh fencing `token`; otherwise report what holds it. A
   * different fingerprint wins over every other state (`mismatch`).
   */
  claim(
    key: string,
    fingerprint: string | undefined,
    lockTtl: number,
    scope?: string,
  ): Promise<ClaimResult>;
  /**
   * Stores `record` for `ttl` ms, only if `token` is the current, unexpired lock on the key.
   * Returns false otherwise (fencing: a holder whose lock expired never overwrites the
   * caller that claimed after it). A store that cannot keep the record (unreachable, or the
   * record is over its size limit) rejects, and leaves the lock in place: the operation ran.
   */
  complete(
    key: string,
    token: string,
    record: IdempotencyRecord,
    ttl: number,
    scope?: string,
  ): Promise<boolean>;
  /** Frees the key if `token` is its current lock (so a retry can run); returns whether it did. */
  release(key: string, token: string, scope?: string): Promise<boolean>;
  /**
   * The live entry for the key: a running claim or a stored outcome; undefined when none (or
   * expired).
   */
  get(key: string, scope?: string): Promise<StoreEntry | undefined>;
  /**
   * Optional: calls `onChange` once the entry is completed or released, so a waiter needs
   * no polling. Stores that cannot notify leave it out and waiters poll with backoff.
   */
  watch?(key: string, scope: string | undefined, onChange: () => void): Disposable;
}

/**
 * The key under which a store files `key` for `scope`: `<scope>:<key>`, with the scope
 * URI-encoded (so it has no `:`) and empty when there is none. The mapping is injective:
 * scope `a:b` + key `c` and scope `a` + key `b:c` never meet, and no scoped key meets an
 * unscoped one. For stores of your own, so that they namespace keys as the built-in ones do.
 *
 * @example
 * ```ts
 * import { scopedKey } from 'bulwark';
 *
 * scopedKey('order-1001', 'tenant:42'); // 'tenant%3A42:order-1001'
 * scopedKey('order-1001', undefined); // ':order-1001'
 * ```
 */
export function scopedKey(key: string, scope: string | undefined): string {
  return scope === undefined || scope === '' ? `:${key}` : `${encodeURIComponent(scope)}:${key}`;
}
