import type { CallContext } from '../../core/context.js';
import type { Disposable } from '../../core/events.js';
import type { ClaimResult, IdempotencyStore } from '../../stores/store.js';
import { asStoreError, DuplicateWait, StoreFailure } from './duplicate-wait.js';

/** Polling without notifications starts here and doubles up to POLL_MAX (ms). */
const POLL_MIN = 10;
const POLL_MAX = 500;

/** A call's idempotency key: the store it lives in, and on which call's behalf. */
export interface KeyRef {
  readonly store: IdempotencyStore;
  readonly ctx: CallContext;
  readonly key: string;
  readonly fingerprint: string | undefined;
  readonly scope: string | undefined;
}

/** A key this call claimed: its claim's `token` fences what it stores or releases. */
export interface HeldKey extends KeyRef {
  readonly token: string;
}

/**
 * Claims the key for `lockTtl` ms; with `wait`, waits out a running duplicate until it
 * finishes or its lock expires. A store failure is thrown as a StoreFailure; the call
 * ending while it waits, as the call's abort reason.
 */
export async function claimKey(ref: KeyRef, lockTtl: number, wait: boolean): Promise<ClaimResult> {
  const { store, ctx, key, scope } = ref;
  let r = await claimOnce(ref, lockTtl);
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
        r = await claimOnce(ref, lockTtl);
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
    r = await claimOnce(ref, lockTtl);
    if (r.state !== 'in-progress') return r;
  }
}

async function claimOnce(ref: KeyRef, lockTtl: number): Promise<ClaimResult> {
  const store = ref.store;
  try {
    return await store.claim(ref.key, ref.fingerprint, lockTtl, ref.scope);
  } catch (error) {
    throw new StoreFailure('claim', asStoreError(store, 'claim', error));
  }
}
