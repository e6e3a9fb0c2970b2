import type { EventHub, EventNames } from '../../core/events.js';
import type { IdempotencyStore } from '../../stores/store.js';
import type { StoreFailure } from './duplicate-wait.js';
import type { IdempotencyStoreError } from './errors.js';

interface KeyEvent {
  key: string;
  store: string;
}

/** Events of an idempotency policy, by name: subscribe with `policy.on(name, listener)`. */
export interface IdempotencyEvents {
  /** The key was claimed and fn runs. */
  executed: KeyEvent;
  /** A stored outcome was returned without running fn. */
  replayed: KeyEvent & { outcome: 'value' | 'error' };
  /** Rejected (or gave up waiting) because another call with the key is running. */
  in_progress: KeyEvent;
  /** Rejected: the key was used before with another fingerprint. */
  key_reused: KeyEvent;
  /** fn failed in a way worth retrying: the key was freed. */
  released: KeyEvent & { error: unknown };
  /** The store failed; `bypassed` tells whether fn ran anyway. */
  store_error: KeyEvent & {
    operation: 'claim' | 'complete' | 'release';
    error: IdempotencyStoreError;
    bypassed: boolean;
  };
  /** fn finished after its claim expired, so its outcome was not stored over a newer claim. */
  lock_lost: KeyEvent;
}

export const IDEMPOTENCY_EVENTS: EventNames<IdempotencyEvents> = {
  executed: true,
  replayed: true,
  in_progress: true,
  key_reused: true,
  released: true,
  store_error: true,
  lock_lost: true,
};

/** Publishes one of the events that carry only the key and the store, if anyone listens. */
export function emitKeyEvent(
  events: EventHub<IdempotencyEvents>,
  name: 'executed' | 'in_progress' | 'key_reused' | 'lock_lost',
  key: string,
  store: IdempotencyStore,
): void {
  if (events.has(name)) events.emit(name, { key, store: store.name });
}

/** Publishes `store_error` for `failure`, if anyone listens. */
export function emitStoreError(
  events: EventHub<IdempotencyEvents>,
  key: string,
  store: IdempotencyStore,
  failure: StoreFailure,
  bypassed: boolean,
): void {
  if (events.has('store_error')) {
    events.emit('store_error', {
      key,
      store: store.name,
      operation: failure.operation,
      error: failure.error,
      bypassed,
    });
  }
}
