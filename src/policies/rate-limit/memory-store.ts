import type { GcraLimit, RateLimitGrant, RateLimitStore } from '../../stores/limit-store.js';
import { GcraState, SLOT_EPSILON } from './gcra.js';

const NOW: RateLimitGrant = Object.freeze({ ok: true, waitMs: 0, retryAfterMs: 0 });

/**
 * The in-memory rate store: GCRA state per key in one process. `rateLimit()` keeps its own
 * state without any store by default; pass one of these to let several rate limits of one
 * process share a key. Idle keys are dropped once their state says nothing any more.
 */
export class MemoryRateLimitStore implements RateLimitStore {
  readonly name = 'MemoryRateLimitStore';
  private readonly states = new Map<string, GcraState>();
  private sweepAt = 1024;

  /** Keys with state (a limit used within its last interval or burst). */
  get size(): number {
    return this.states.size;
  }

  acquire(key: string, limit: GcraLimit, maxWaitMs: number, now: number): RateLimitGrant {
    let state = this.states.get(key);
    if (state === undefined) this.states.set(key, (state = new GcraState()));
    if (this.states.size >= this.sweepAt) this.sweep(now);
    const wait = state.waitAt(now, limit);
    if (wait > maxWaitMs + SLOT_EPSILON) return { ok: false, waitMs: 0, retryAfterMs: wait };
    state.reserve(now, limit);
    return wait <= SLOT_EPSILON
      ? NOW
      : { ok: true, waitMs: wait, retryAfterMs: 0, token: state.tat };
  }

  /** Undoes a reservation if it is still the newest one of its key (a later one depends on it otherwise). */
  cancel(key: string, limit: GcraLimit, grant: RateLimitGrant): void {
    const state = this.states.get(key);
    if (state !== undefined && grant.token !== undefined && state.tat === grant.token)
      state.giveBack(limit);
  }

  /** A key whose TAT has passed is the same as no key: drop it so the map stays bounded by use. */
  private sweep(now: number): void {
    for (const [key, state] of this.states) if (state.tat <= now) this.states.delete(key);
    // Amortised: the next sweep waits until the map has doubled again.
    this.sweepAt = Math.max(1024, this.states.size * 2);
  }
}
