import type { CallContext, Operation, Step } from '../../core/context.js';
import { IdempotencyInProgressError, IdempotencyKeyReuseError } from './errors.js';
import { ConfigError, withoutStack } from '../../core/errors.js';
import { ObservablePolicy } from '../../core/observable-policy.js';
import { terminalStep } from '../../core/pipeline.js';
import { AttemptTracker } from './attempt-tracker.js';
import { MemoryStore } from '../../stores/memory.js';
import type { ClaimResult, IdempotencyStore } from '../../stores/store.js';
import { StoreFailure } from './duplicate-wait.js';
import {
  emitKeyEvent,
  emitStoreError,
  IDEMPOTENCY_EVENTS,
  type IdempotencyEvents,
} from './events.js';
import { claimKey, type HeldKey, type KeyRef } from './key-claim.js';
import { validateIdempotencyOptions, type IdempotencyOptions } from './options.js';
import { OutcomeKeeper } from './outcome-keeper.js';

export { jsonSerializer, type Serializer } from './serializer.js';
export type { IdempotencyEvents } from './events.js';
export type { IdempotencyOptions } from './options.js';

/** Longest key accepted, as the HTTP layer does: keys end up in store keys and logs. */
export const MAX_KEY_LENGTH = 255;

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
  private readonly scope: IdempotencyOptions['scope'];
  private readonly outcomes: OutcomeKeeper;

  constructor(options: IdempotencyOptions = {}, path = 'idempotency') {
    const settings = validateIdempotencyOptions(options, path);
    super(settings.clock, IDEMPOTENCY_EVENTS);
    this.store = settings.store;
    this.ttl = settings.ttl;
    this.lockTtl = settings.lockTtl;
    this.fingerprint = settings.fingerprint;
    this.onInProgress = settings.onInProgress;
    this.onStoreError = settings.onStoreError;
    this.storeFailures = settings.storeFailures;
    this.scope = settings.scope;
    this.outcomes = new OutcomeKeeper(settings, this.events);
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

    const ref: KeyRef = { store, ctx, key, fingerprint, scope };
    let claim: ClaimResult;
    try {
      claim = await claimKey(ref, this.lockTtl, this.onInProgress === 'wait');
    } catch (error) {
      if (!(error instanceof StoreFailure)) {
        // The call ended (deadline or caller abort) while the key was still held by another.
        emitKeyEvent(this.events, 'in_progress', key, store);
        throw error;
      }
      const bypassed = this.onStoreError === 'bypass';
      emitStoreError(this.events, key, store, error, bypassed);
      if (bypassed) return next.invoke(ctx, fn);
      throw error.error;
    }

    switch (claim.state) {
      case 'completed':
        if (this.events.has('replayed')) {
          this.events.emit('replayed', { key, store: store.name, outcome: claim.record.outcome });
        }
        return this.outcomes.replay(store, claim.record) as T;
      case 'mismatch':
        emitKeyEvent(this.events, 'key_reused', key, store);
        throw withoutStack(() => new IdempotencyKeyReuseError());
      case 'in-progress':
        emitKeyEvent(this.events, 'in_progress', key, store);
        throw withoutStack(() => new IdempotencyInProgressError());
      case 'claimed':
        break;
    }
    const held: HeldKey = { ...ref, token: claim.token };
    if (ctx.isAborted) {
      // The claim answered after the call was over (a slow store): never start fn then.
      await this.outcomes.release(held);
      throw ctx.abortReason;
    }

    emitKeyEvent(this.events, 'executed', key, store);
    // With policies inside this one (a timeout, a retry), the call can end while fn still
    // runs: follow its attempts so the key is settled only once they all have.
    const tracker = next === terminalStep ? undefined : new AttemptTracker(fn);
    let value: T;
    try {
      value = await next.invoke(ctx, tracker === undefined ? fn : tracker.run);
    } catch (error) {
      if (tracker?.busy || tracker?.value !== undefined) {
        void this.outcomes.settleAbandoned(held, error, tracker);
      } else {
        await this.outcomes.settleFailure(held, error);
      }
      throw error;
    }
    return this.outcomes.storeValue(held, value);
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
