import type { Clock } from '../../core/clock.js';
import type { Context } from '../../core/context.js';
import { Validator } from '../../core/validate.js';
import type { IdempotencyStore } from '../../stores/store.js';
import { isRetryableError } from '../retry/classification.js';
import { jsonSerializer, type Serializer } from './serializer.js';

/** Options of `idempotency()`; all optional. */
export interface IdempotencyOptions {
  /** Where claims and outcomes live (default: a MemoryStore of this policy's own). */
  store?: IdempotencyStore;
  /** How long an outcome is kept and replayed (default 24 h). */
  ttl?: number | string;
  /**
   * How long a claim holds the key before another caller may take it over (default 60 s).
   * Make it longer than the operation can run: a holder that overruns it loses its claim.
   */
  lockTtl?: number | string;
  /** Fingerprint of the request payload (default: the `fingerprint` execute option). */
  fingerprint?: (ctx: Context) => string | undefined;
  /** A duplicate arriving while the first call runs: fail at once, or wait for its outcome (default 'reject'). */
  onInProgress?: 'reject' | 'wait';
  /** The store fails or does not answer: fail the call (default), or run fn without idempotency. */
  onStoreError?: 'fail' | 'bypass';
  /** Store and replay non-retryable failures (default true); otherwise release the key. */
  storeFailures?: boolean;
  /** Which failures release the key so a retry can run fn again (default `isRetryableError`). */
  isRetryable?: (error: unknown) => boolean;
  /** How outcomes are stored (default: JSON, refusing values that would not come back equal). */
  serializer?: Serializer;
  /** Tenant or user namespace for keys: a string, or read from the call. */
  scope?: string | ((ctx: Context) => string | undefined);
  /**
   * The clock waits and the default store's TTLs run on (default: the pipeline's clock, else the
   * system clock).
   */
  clock?: Clock;
}

const KNOWN = [
  'store',
  'ttl',
  'lockTtl',
  'fingerprint',
  'onInProgress',
  'onStoreError',
  'storeFailures',
  'isRetryable',
  'serializer',
  'scope',
  'clock',
];

/** The options of `idempotency()` once validated, every default filled in. */
export interface IdempotencySettings {
  store: IdempotencyStore | undefined;
  ttl: number;
  lockTtl: number;
  fingerprint: IdempotencyOptions['fingerprint'];
  onInProgress: 'reject' | 'wait';
  onStoreError: 'fail' | 'bypass';
  storeFailures: boolean;
  isRetryable: (error: unknown) => boolean;
  serializer: Serializer;
  scope: IdempotencyOptions['scope'];
  clock: Clock | undefined;
}

/** Validates `options` once, at construction; every problem is reported under `path`. */
export function validateIdempotencyOptions(
  options: IdempotencyOptions,
  path: string,
): IdempotencySettings {
  const v = new Validator(path);
  const o = v.object(options, KNOWN);
  const store = o.store as IdempotencyStore | undefined;
  if (
    store !== undefined &&
    (store === null ||
      typeof store !== 'object' ||
      typeof store.claim !== 'function' ||
      typeof store.complete !== 'function' ||
      typeof store.release !== 'function' ||
      typeof store.get !== 'function')
  ) {
    v.problem('store', 'an idempotency store (claim, complete, release, get)', store);
  }
  const ttl = v.duration('ttl', o.ttl, 24 * 60 * 60 * 1000, { min: 1 });
  const lockTtl = v.duration('lockTtl', o.lockTtl, 60_000, { min: 1 });
  const fingerprint = v.func<IdempotencyOptions['fingerprint']>(
    'fingerprint',
    o.fingerprint,
    undefined,
  );
  const onInProgress = v.oneOf(
    'onInProgress',
    o.onInProgress,
    ['reject', 'wait'] as const,
    'reject',
  );
  const onStoreError = v.oneOf('onStoreError', o.onStoreError, ['fail', 'bypass'] as const, 'fail');
  const storeFailures = v.bool('storeFailures', o.storeFailures, true);
  const isRetryable = v.func('isRetryable', o.isRetryable, isRetryableError);
  const serializer = (o.serializer ?? jsonSerializer) as Serializer;
  if (
    serializer === null ||
    typeof serializer !== 'object' ||
    typeof serializer.serialize !== 'function' ||
    typeof serializer.deserialize !== 'function'
  ) {
    v.problem('serializer', 'an object with serialize(value) and deserialize(text)', o.serializer);
  }
  const scope = o.scope as IdempotencyOptions['scope'];
  if (scope !== undefined && typeof scope !== 'string' && typeof scope !== 'function') {
    v.problem('scope', 'a string or a function of the call context', scope);
  }
  v.done();
  return {
    store,
    ttl,
    lockTtl,
    fingerprint,
    onInProgress,
    onStoreError,
    storeFailures,
    isRetryable,
    serializer,
    scope,
    clock: o.clock as Clock | undefined,
  };
}
