import type { GcraLimit } from '../../stores/limit-store.js';

/**
 * GCRA, the Generic Cell Rate Algorithm: a rate limit kept as one number per key, the
 * theoretical arrival time (TAT) of the next call at the steady rate. A call arriving at
 * `now` may start at `max(TAT, now) − tolerance`; taking that slot moves TAT on by one
 * interval. It is a token bucket seen from the other side (same admissions), but with no
 * refill to compute and a single number to store, which is what makes the Redis script
 * one GET and one SET.
 */

/** Floating-point slack, in ms, when comparing slot times (1/3-ms intervals do not add exactly). */
export const SLOT_EPSILON = 1e-6;

/** The GCRA limit of `rate` calls per `per` ms with `burst` extra calls allowed at once. */
export function gcraLimit(rate: number, per: number, burst: number): GcraLimit {
  const interval = per / rate;
  return { interval, tolerance: burst * interval };
}

/** One key's state: its theoretical arrival time. */
export class GcraState {
  /** Theoretical arrival time of the next call at the steady rate (ms, on the caller's clock). */
  tat = -Infinity;

  /** ms from `now` until the earliest slot a new call could take (≤ 0: free now). */
  waitAt(now: number, limit: GcraLimit): number {
    return (this.tat > now ? this.tat : now) - limit.tolerance - now;
  }

  /** Takes the earliest slot (now or in the future) and returns its time. */
  reserve(now: number, limit: GcraLimit): number {
    const base = this.tat > now ? this.tat : now;
    this.tat = base + limit.interval;
    return base - limit.tolerance;
  }

  /** Gives back one interval: the newest reservation, or (for the local pacer) any queued one. */
  giveBack(limit: GcraLimit): void {
    this.tat -= limit.interval;
  }
}
