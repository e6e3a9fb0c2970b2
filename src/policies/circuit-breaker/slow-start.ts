/** The share a ramp starts at: a dependency that just came back still gets some traffic. */
export const SLOW_START_MIN_SHARE = 0.1;

/**
 * Slow start after the breaker closes (as Envoy's slow start ramps a host's weight): over
 * `window` ms, the calls admitted may be at most a share of the calls offered, growing
 * linearly from 10 % to all of them. Calls that waited while the breaker was open count as
 * offered the moment it closes, so a crowd of released waiters cannot knock over a
 * dependency that has just recovered; the calls over the share wait (or fail, when they
 * cannot wait) and are let through as the share grows.
 *
 * It counts, it does not time: the breaker asks `admit` at each arrival and arms its one
 * timer for `nextAdmissionAt` when calls are held back.
 */
export class SlowStart {
  /** Calls offered since the ramp began (each counted once). */
  offered = 0;
  /** Calls let through since the ramp began. */
  admitted = 0;
  private start = 0;

  constructor(readonly window: number) {}

  /** Starts a ramp at `now` with `waiting` calls already offered (the released waiters). */
  begin(now: number, waiting: number): void {
    this.start = now;
    this.offered = waiting;
    this.admitted = 0;
  }

  /** The share of offered calls that may have been admitted by `now`, in [0.1, 1]. */
  share(now: number): number {
    const progress = (now - this.start) / this.window;
    if (!(progress < 1)) return 1;
    return SLOW_START_MIN_SHARE + (1 - SLOW_START_MIN_SHARE) * (progress > 0 ? progress : 0);
  }

  /** True once the ramp is over: every call is admitted again. */
  over(now: number): boolean {
    return now - this.start >= this.window;
  }

  /** Counts a new call as offered. */
  offer(): void {
    this.offered++;
  }

  /**
   * Admits one more call if that keeps `admitted ≤ share × offered` (the very first call
   * of a ramp always goes: a dependency must see traffic to be seen healthy).
   */
  admit(now: number): boolean {
    if (this.admitted > 0 && this.admitted + 1 > this.share(now) * this.offered) return false;
    this.admitted++;
    return true;
  }

  /** When the next call can be admitted if nothing else is offered (the ramp's end at the latest). */
  nextAdmissionAt(): number {
    const needed = (this.admitted + 1) / this.offered;
    if (!(needed < 1)) return this.start + this.window;
    const progress = (needed - SLOW_START_MIN_SHARE) / (1 - SLOW_START_MIN_SHARE);
    return this.start + Math.max(0, progress) * this.window;
  }
}
