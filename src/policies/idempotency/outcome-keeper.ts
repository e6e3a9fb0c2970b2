import { CallContext } from '../../core/context.js';
import { isAbortError, isBulwarkError } from '../../core/errors.js';
import type { EventHub } from '../../core/events.js';
import type { IdempotencyRecord, IdempotencyStore } from '../../stores/store.js';
import type { AttemptTracker } from './attempt-tracker.js';
import { asStoreError, StoreFailure } from './duplicate-wait.js';
import { IdempotencyStoreError } from './errors.js';
import { emitKeyEvent, emitStoreError, type IdempotencyEvents } from './events.js';
import { claimKey, type HeldKey } from './key-claim.js';
import type { IdempotencySettings } from './options.js';
import { dataToError, errorToData, type Serializer } from './serializer.js';

/** A failed complete is tried this many times in all, pausing COMPLETE_RETRY_MIN ms, then doubling. */
const COMPLETE_ATTEMPTS = 4;
const COMPLETE_RETRY_MIN = 10;

/**
 * What becomes of a claimed key once fn has run: its value or failure stored (fenced by
 * the claim's token) and replayed to later callers, or the key released for a retry.
 */
export class OutcomeKeeper {
  private readonly ttl: number;
  private readonly lockTtl: number;
  private readonly onInProgress: 'reject' | 'wait';
  private readonly onStoreError: 'fail' | 'bypass';
  private readonly storeFailures: boolean;
  private readonly isRetryable: (error: unknown) => boolean;
  private readonly serializer: Serializer;

  constructor(
    settings: IdempotencySettings,
    private readonly events: EventHub<IdempotencyEvents>,
  ) {
    this.ttl = settings.ttl;
    this.lockTtl = settings.lockTtl;
    this.onInProgress = settings.onInProgress;
    this.onStoreError = settings.onStoreError;
    this.storeFailures = settings.storeFailures;
    this.isRetryable = settings.isRetryable;
    this.serializer = settings.serializer;
  }

  /** Stores fn's value (or, if it cannot be serialized, the serialization failure). */
  async storeValue<T>(held: HeldKey, value: T): Promise<T> {
    let body: string;
    try {
      body = this.serializer.serialize(value);
    } catch (error) {
      // fn ran, so its key must not run it again: keep the refusal as the key's outcome.
      await this.keepFailure(held, error);
      throw error;
    }
    return this.finish(held, { outcome: 'value', body }, value);
  }

  /**
   * The call ended (timeout, abort) while an attempt of fn still ran: once every attempt has
   * settled, a value one of them returned becomes the key's outcome; otherwise the failure
   * is settled as usual. Runs detached from the caller, so it never rejects.
   */
  async settleAbandoned<T>(
    held: HeldKey,
    error: unknown,
    tracker: AttemptTracker<T>,
  ): Promise<void> {
    await tracker.settled();
    try {
      if (tracker.value !== undefined) {
        // The call's deadline is behind us: store on a context of our own, so that a failed
        // complete is still retried.
        const own = CallContext.root(held.ctx.clock, Infinity);
        await this.storeValue({ ...held, ctx: own }, tracker.value.value);
      } else {
        await this.settleFailure(held, error);
      }
    } catch {
      // Reported through the store_error event; the caller already has its answer.
    }
  }

  /** Stores the successful outcome; if fencing refused it, defers to whatever the store holds now. */
  private async finish<T>(held: HeldKey, record: IdempotencyRecord, value: T): Promise<T> {
    let stored: boolean;
    try {
      stored = await this.completeWithRetry(held, record);
    } catch (error) {
      return this.unstored(held, error, value);
    }
    if (stored) return value;
    const { store, key } = held;
    emitKeyEvent(this.events, 'lock_lost', key, store);
    // Our claim expired while fn ran. So that no two callers see two different outcomes,
    // answer with the outcome stored by whoever took over, or store ours if the key is free.
    try {
      for (let tries = 0; tries < 3; tries++) {
        const r = await claimKey(held, this.lockTtl, this.onInProgress === 'wait');
        if (r.state === 'completed') return this.replay(store, r.record) as T;
        if (r.state !== 'claimed') return value;
        if (await this.completeWithRetry({ ...held, token: r.token }, record)) return value;
      }
    } catch (error) {
      if (error instanceof StoreFailure) return this.unstored(held, error, value);
      if (!held.ctx.isAborted) throw error;
    }
    return value;
  }

  /**
   * fn ran but its outcome could not be stored: the call fails with the store's error
   * (unless `onStoreError: 'bypass'` chose availability), and the key is not freed.
   */
  private unstored<T>({ key, store }: HeldKey, error: unknown, value: T): T {
    const failure =
      error instanceof StoreFailure
        ? error
        : new StoreFailure('complete', asStoreError(store, 'complete', error));
    const bypassed = this.onStoreError === 'bypass';
    emitStoreError(this.events, key, store, failure, bypassed);
    if (bypassed) return value;
    throw failure.error;
  }

  /**
   * `store.complete`, retried a few times with a short backoff while the call has budget
   * left: a lost connection must not turn a finished operation into an unstored one.
   */
  private async completeWithRetry(
    { store, ctx, key, scope, token }: HeldKey,
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
    { store, key, scope, token }: HeldKey,
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
        emitKeyEvent(this.events, 'lock_lost', key, store);
    } catch (e) {
      emitStoreError(
        this.events,
        key,
        store,
        new StoreFailure('complete', asStoreError(store, 'complete', e)),
        false,
      );
    }
    return true;
  }

  async settleFailure(held: HeldKey, error: unknown): Promise<void> {
    // Local rejections (timeouts, open breakers, aborts) say nothing about the operation's
    // outcome, and a retryable failure must be retried: neither is stored.
    const keep =
      this.storeFailures &&
      !held.ctx.isAborted &&
      !isBulwarkError(error) &&
      !isAbortError(error) &&
      !this.isRetryable(error);
    if (keep && (await this.keepFailure(held, error))) return;
    await this.release(held);
    if (this.events.has('released'))
      this.events.emit('released', { key: held.key, store: held.store.name, error });
  }

  async release({ store, key, scope, token }: HeldKey): Promise<void> {
    try {
      await store.release(key, token, scope);
    } catch (e) {
      // The lock then simply expires after lockTtl.
      emitStoreError(
        this.events,
        key,
        store,
        new StoreFailure('release', asStoreError(store, 'release', e)),
        false,
      );
    }
  }

  replay(store: IdempotencyStore, record: IdempotencyRecord): unknown {
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
}
