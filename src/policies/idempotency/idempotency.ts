import type { Clock } from '../../core/clock.js';
import { CallContext, type Context, type Operation, type Step } from '../../core/context.js';
import {
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  IdempotencyStoreError,
} from './errors.js';
import { ConfigError, isAbortError, isBulwarkError, withoutStack } from '../../core/errors.js';
import { ObservablePolicy } from '../../core/observable-policy.js';
import type { Disposable, EventNames } from '../../core/events.js';
import { terminalStep } from '../../core/pipeline.js';
import { AttemptTracker } from './attempt-tracker.js';
import { Validator } from '../../core/validate.js';
import { MemoryStore } from '../../stores/memory.js';
import type { ClaimResult, IdempotencyRecord, IdempotencyStore } from '../../stores/store.js';
import { isRetryableError } from '../retry/classification.js';
import { asStoreError, DuplicateWait, StoreFailure } from './duplicate-wait.js';
import { dataToError, errorToData, jsonSerializer, type Serializer } from './serializer.js';

export { jsonSerializer, type Serializer } from './serializer.js';

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

const IDEMPOTENCY_EVENTS: EventNames<IdempotencyEvents> = {
  executed: true,
  replayed: true,
  in_progress: true,
  key_reused: true,
  released: true,
  store_error: true,
  lock_lost: true,
};

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

/** A failed complete is tried this many times in all, pausing COMPLETE_RETRY_MIN ms, then doubling. */
const COMPLETE_ATTEMPTS = 4;
const COMPLETE_RETRY_MIN = 10;
/** Longest key accepted, as the HTTP layer does: keys end up in store keys and logs. */
export const MAX_KEY_LENGTH = 255;

/** Polling without notifications starts here and doubles up to POLL_MAX (ms). */
const POLL_MIN = 10;
const POLL_MAX = 500;

/**
 * Makes a non-idempotent operation safe to retry or to receive twice. The first call
 * with a key claims it in the store, runs fn and stores the outcome for `ttl`; a later
 * call with the key gets that outcome back without running fn. Claims expire after
 * `lockTtl`, and every write carries the claim's fencing token, so a holder that crashed
 * or overran can never overwrite the outcome of the caller that took over.
 */
export class IdempotencyPolicy extends ObservablePolicy<IdempotencyEvents> {
  readonly kind = 'idempotency';
  /** How long an outcome is kept and replayed, in ms. */
  readonly ttl: number;
  /** How long a claim holds its key, in ms, before another caller may take it over. */
  readonly lockTtl: number;
  /** What a duplicate does while the first call with its key runs. */
  readonly onInProgress: 'reject' | 'wait';
  /** What happens when the store fails: fail the call, or run it without idempotency. */
  readonly onStoreError: 'fail' | 'bypass';
  /** Whether non-retryable failures are stored and replayed. */
  readonly storeFailures: boolean;
  private store: IdempotencyStore | undefined;
  private readonly fingerprint: IdempotencyOptions['fingerprint'];
  private readonly isRetryable: (error: unknown) => boolean;
  private readonly serializer: Serializer;
  private readonly scope: IdempotencyOptions['scope'];

  constructor(options: IdempotencyOptions = {}, path = 'idempotency') {
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
    const onStoreError = v.oneOf(
      'onStoreError',
      o.onStoreError,
      ['fail', 'bypass'] as const,
      'fail',
    );
    const storeFailures = v.bool('storeFailures', o.storeFailures, true);
    const isRetryable = v.func('isRetryable', o.isRetryable, isRetryableError);
    const serializer = (o.serializer ?? jsonSerializer) as Serializer;
    if (
      serializer === null ||
      typeof serializer !== 'object' ||
      typeof serializer.serialize !== 'function' ||
      typeof serializer.deserialize !== 'function'
    ) {
      v.problem(
        'serializer',
        'an object with serialize(value) and deserialize(text)',
        o.serializer,
      );
    }
    const scope = o.scope as IdempotencyOptions['scope'];
    if (scope !== undefined && typeof scope !== 'string' && typeof scope !== 'function') {
      v.problem('scope', 'a string or a function of the call context', scope);
    }
    v.done();
    super(o.clock as Clock | undefined, IDEMPOTENCY_EVENTS);
    this.store = store;
    this.ttl = ttl;
    this.lockTtl = lockTtl;
    this.fingerprint = fingerprint;
    this.onInProgress = onInProgress;
    this.onStoreError = onStoreError;
    this.storeFailures = storeFailures;
    this.isRetryable = isRetryable;
    this.serializer = serializer;
    this.scope = scope;
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    return this.call(ctx, fn, next);
  }

  private async call<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    // The default store lives on the clock of the first call (a pipeline may hand one in late).
    const store = (this.store ??= new MemoryStore({ clock: this.clock ?? ctx.clock }));
    const key = ctx.idempotencyKey;
    if (key.length === 0 || key.length > MAX_KEY_LENGTH) {
      throw new ConfigError([
        {
          path: 'idempotencyKey',
          expected: `a key of 1 to ${MAX_KEY_LENGTH} characters`,
          // Not the key itself: it may be a megabyte.
          got: key.length > 32 ? `${key.slice(0, 32)}…` : key,
          message: `expected a key of 1 to ${MAX_KEY_LENGTH} characters, got ${key.length === 0 ? 'the empty string' : `${key.length} characters`}`,
        },
      ]);
    }
    const fingerprint = this.fingerprint !== undefined ? this.fingerprint(ctx) : ctx.fingerprint;
    const scope = typeof this.scope === 'function' ? this.scope(ctx) : this.scope;

    let claim: ClaimResult;
    try {
      claim = await this.acquire(store, ctx, key, fingerprint, scope, this.onInProgress === 'wait');
    } catch (error) {
      if (!(error instanceof StoreFailure)) {
        // The call ended (deadline or caller abort) while the key was still held by another.
        this.emit('in_progress', key, store);
        throw error;
      }
      const bypassed = this.onStoreError === 'bypass';
      this.storeError(key, store, error, bypassed);
      if (bypassed) return next.invoke(ctx, fn);
      throw error.error;
    }

    switch (claim.state) {
      case 'completed':
        if (this.events.has('replayed')) {
          this.events.emit('replayed', { key, store: store.name, outcome: claim.record.outcome });
        }
        return this.replay(store, claim.record) as T;
      case 'mismatch':
        this.emit('key_reused', key, store);
        throw withoutStack(() => new IdempotencyKeyReuseError());
      case 'in-progress':
        this.emit('in_progress', key, store);
        throw withoutStack(() => new IdempotencyInProgressError());
      case 'claimed':
        break;
    }
    if (ctx.isAborted) {
      // The claim answered after the call was over (a slow store): never start fn then.
      await this.release(store, key, scope, claim.token);
      throw ctx.abortReason;
    }

    this.emit('executed', key, store);
    // With policies inside this one (a timeout, a retry), the call can end while fn still
    // runs: follow its attempts so the key is settled only once they all have.
    const tracker = next === terminalStep ? undefined : new AttemptTracker(fn);
    let value: T;
    try {
      value = await next.invoke(ctx, tracker === undefined ? fn : tracker.run);
    } catch (error) {
      if (tracker?.busy || tracker?.value !== undefined) {
        void this.settleAbandoned(store, ctx, key, fingerprint, scope, claim.token, error, tracker);
      } else {
        await this.settleFailure(store, ctx, key, scope, claim.token, error);
      }
      throw error;
    }
    return this.storeValue(store, ctx, key, fingerprint, scope, claim.token, value);
  }

  /** Stores fn's value (or, if it cannot be serialized, the serialization failure). */
  private async storeValue<T>(
    store: IdempotencyStore,
    ctx: CallContext,
    key: string,
    fingerprint: string | undefined,
    scope: string | undefined,
    token: string,
    value: T,
  ): Promise<T> {
    let body: string;
    try {
      body = this.serializer.serialize(value);
    } catch (error) {
      // fn ran, so its key must not run it again: keep the refusal as the key's outcome.
      await this.keepFailure(store, key, scope, token, error);
      throw error;
    }
    return this.finish(
      store,
      ctx,
      key,
      fingerprint,
      scope,
      token,
      { outcome: 'value', body },
      value,
    );
  }

  /**
   * The call ended (timeout, abort) while an attempt of fn still ran: once every attempt has
   * settled, a value one of them returned becomes the key's outcome; otherwise the failure
   * is settled as usual. Runs detached from the caller, so it never rejects.
   */
  private async settleAbandoned<T>(
    store: IdempotencyStore,
    ctx: CallContext,
    key: string,
    fingerprint: string | undefined,
    scope: string | undefined,
    token: string,
    error: unknown,
    tracker: AttemptTracker<T>,
  ): Promise<void> {
    await tracker.settled();
    try {
      if (tracker.value !== undefined) {
        // The call's deadline is behind us: store on a context of our own, so that a failed
        // complete is still retried.
        const own = CallContext.root(ctx.clock, Infinity);
        await this.storeValue(store, own, key, fingerprint, scope, token, tracker.value.value);
      } else {
        await this.settleFailure(store, ctx, key, scope, token, error);
      }
    } catch {
      // Reported through the store_error event; the caller already has its answer.
    }
  }

  /** Claims the key; with `wait`, waits out a running duplicate until it finishes or its lock expires. */
  private async acquire(
    store: IdempotencyStore,
    ctx: CallContext,
    key: string,
    fingerprint: string | undefined,
    scope: string | undefined,
    wait: boolean,
  ): Promise<ClaimResult> {
    let r = await this.claimOnce(store, key, fingerprint, scope);
    if (r.state !== 'in-progress' || !wait) return r;
    const clock = ctx.clock;
    let poll = POLL_MIN;
    for (;;) {
      if (ctx.isAborted) throw ctx.abortReason;
      const waiter = new DuplicateWait(ctx, clock);
      let watch: Disposable | undefined;
      let pause: number;
      if (store.watch !== undefined) {
        // Watch first, then look again: a completion between the two cannot be missed.
        watch = store.watch(key, scope, waiter.wake);
        try {
          r = await this.claimOnce(store, key, fingerprint, scope);
        } catch (error) {
          watch.dispose();
          throw error;
        }
        if (r.state !== 'in-progress') {
          watch.dispose();
          return r;
        }
        // Notified on completion or release; the lock running out is the one change no store reports.
        pause = r.lockRemaining ?? POLL_MAX;
      } else {
        pause = Math.min(poll, r.lockRemaining ?? POLL_MAX);
        poll = Math.min(poll * 2, POLL_MAX);
      }
      try {
        await waiter.wait(pause);
      } finally {
        watch?.dispose();
      }
      r = await this.claimOnce(store, key, fingerprint, scope);
      if (r.state !== 'in-progress') return r;
    }
  }

  private async claimOnce(
    store: IdempotencyStore,
    key: string,
    fingerprint: string | undefined,
    scope: string | undefined,
  ): Promise<ClaimResult> {
    try {
      return await store.claim(key, fingerprint, this.lockTtl, scope);
    } catch (error) {
      throw new StoreFailure('claim', asStoreError(store, 'claim', error));
    }
  }

  /** Stores the successful outcome; if fencing refused it, defers to whatever the store holds now. */
  private async finish<T>(
    store: IdempotencyStore,
    ctx: CallContext,
    key: string,
    fingerprint: string | undefined,
    scope: string | undefined,
    token: string,
    record: IdempotencyRecord,
    value: T,
  ): Promise<T> {
    let stored: boolean;
    try {
      stored = await this.completeWithRetry(store, ctx, key, scope, token, record);
    } catch (error) {
      return this.unstored(key, store, error, value);
    }
    if (stored) return value;
    this.emit('lock_lost', key, store);
    // Our claim expired while fn ran. So that no two callers see two different outcomes,
    // answer with the outcome stored by whoever took over, or store ours if the key is free.
    try {
      for (let tries = 0; tries < 3; tries++) {
        const r = await this.acquire(
          store,
          ctx,
          key,
          fingerprint,
          scope,
          this.onInProgress === 'wait',
        );
        if (r.state === 'completed') return this.replay(store, r.record) as T;
        if (r.state !== 'claimed') return value;
        if (await this.completeWithRetry(store, ctx, key, scope, r.token, record)) return value;
      }
    } catch (error) {
      if (error instanceof StoreFailure) return this.unstored(key, store, error, value);
      if (!ctx.isAborted) throw error;
    }
    return value;
  }

  /**
   * fn ran but its outcome could not be stored: the call fails with the store's error
   * (unless `onStoreError: 'bypass'` chose availability), and the key is not freed.
   */
  private unstored<T>(key: string, store: IdempotencyStore, error: unknown, value: T): T {
    const failure =
      error instanceof StoreFailure
        ? error
        : new StoreFailure('complete', asStoreError(store, 'complete', error));
    const bypassed = this.onStoreError === 'bypass';
    this.storeError(key, store, failure, bypassed);
    if (bypassed) return value;
    throw failure.error;
  }

  /**
   * `store.complete`, retried a few times with a short backoff while the call has budget
   * left: a lost connection must not turn a finished operation into an unstored one.
   */
  private async completeWithRetry(
    store: IdempotencyStore,
    ctx: CallContext,
    key: string,
    scope: string | undefined,
    token: string,
    record: IdempotencyRecord,
  ): Promise<boolean> {
    let pause = COMPLETE_RETRY_MIN;
    for (let attempt = 1; ; attempt++) {
      try {
        return await store.complete(key, token, record, this.ttl, scope);
      } catch (error) {
        if (attempt >= COMPLETE_ATTEMPTS || ctx.remaining() <= pause) {
          throw new StoreFailure('complete', asStoreError(store, 'complete', error));
        }
      }
      await ctx.clock.sleep(pause);
      pause *= 2;
    }
  }

  /**
   * Keeps `error` as the key's outcome. False when the serializer refuses even the error's
   * data; if the store fails, the lock is left to expire (never released: fn ran).
   */
  private async keepFailure(
    store: IdempotencyStore,
    key: string,
    scope: string | undefined,
    token: string,
    error: unknown,
  ): Promise<boolean> {
    let body: string;
    try {
      body = this.serializer.serialize(errorToData(error));
    } catch {
      return false;
    }
    try {
      if (!(await store.complete(key, token, { outcome: 'error', body }, this.ttl, scope)))
        this.emit('lock_lost', key, store);
    } catch (e) {
      this.storeError(
        key,
        store,
        new StoreFailure('complete', asStoreError(store, 'complete', e)),
        false,
      );
    }
    return true;
  }

  private async settleFailure(
    store: IdempotencyStore,
    ctx: CallContext,
    key: string,
    scope: string | undefined,
    token: string,
    error: unknown,
  ): Promise<void> {
    // Local rejections (timeouts, open breakers, aborts) say nothing about the operation's
    // outcome, and a retryable failure must be retried: neither is stored.
    const keep =
      this.storeFailures &&
      !ctx.isAborted &&
      !isBulwarkError(error) &&
      !isAbortError(error) &&
      !this.isRetryable(error);
    if (keep && (await this.keepFailure(store, key, scope, token, error))) return;
    await this.release(store, key, scope, token);
    if (this.events.has('released'))
      this.events.emit('released', { key, store: store.name, error });
  }

  private async release(
    store: IdempotencyStore,
    key: string,
    scope: string | undefined,
    token: string,
  ): Promise<void> {
    try {
      await store.release(key, token, scope);
    } catch (e) {
      // The lock then simply expires after lockTtl.
      this.storeError(
        key,
        store,
        new StoreFailure('release', asStoreError(store, 'release', e)),
        false,
      );
    }
  }

  private replay(store: IdempotencyStore, record: IdempotencyRecord): unknown {
    let data: unknown;
    try {
      data = this.serializer.deserialize(record.body);
    } catch (error) {
      throw new IdempotencyStoreError(store.name, 'the stored outcome could not be deserialized', {
        cause: error,
      });
    }
    if (record.outcome === 'error') throw dataToError(data);
    return data;
  }

  private emit(
    name: 'executed' | 'in_progress' | 'key_reused' | 'lock_lost',
    key: string,
    store: IdempotencyStore,
  ): void {
    if (this.events.has(name)) this.events.emit(name, { key, store: store.name });
  }

  private storeError(
    key: string,
    store: IdempotencyStore,
    failure: StoreFailure,
    bypassed: boolean,
  ): void {
    if (this.events.has('store_error')) {
      this.events.emit('store_error', {
        key,
        store: store.name,
        operation: failure.operation,
        error: failure.error,
        bypassed,
      });
    }
  }
}

/**
 * See IdempotencyPolicy and IdempotencyOptions. The call's key is the `idempotencyKey`
 * execute option; put the policy outside `retry()`, so that one claim covers every attempt.
 *
 * @example
 * ```ts
 * import { idempotency, memoryStore, pipeline, retry, type Context } from 'bulwark';
 *
 * const charges = pipeline(idempotency({ store: memoryStore(), ttl: '24h' }), retry());
 * const charge = async (ctx: Context) => {
 *   const headers = { 'idempotency-key': ctx.idempotencyKey }; // the payment API dedupes too
 *   const res = await fetch('http://payments/charges', {
 *     method: 'POST',
 *     headers,
 *     body: '{"cents":4200}',
 *   });
 *   return (await res.json()) as { id: string };
 * };
 * const call = { idempotencyKey: 'order-1001', fingerprint: 'cents=4200' };
 * const first = await charges.execute(charge, call);
 * const again = await charges.execute(charge, call); // replayed from the store: charged once
 * ```
 */
export function idempotency(options?: IdempotencyOptions): IdempotencyPolicy {
  return new IdempotencyPolicy(options);
}
