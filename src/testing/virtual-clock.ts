import { sleepWithTimers, type Clock, type TimerHandle } from '../core/clock.js';
import { IndexedHeap } from '../core/heap.js';

interface VirtualTimer {
  at: number;
  seq: number;
  fn: () => void;
  heapIndex: number;
}

/** Options of `new VirtualClock()`. */
export interface VirtualClockOptions {
  /** Initial reading of `now()` in ms (default 0). */
  start?: number;
  /** advance()/runAll() give up after firing this many timers (default 1 000 000). */
  maxTimers?: number;
}

/** Lets queued promise callbacks (and anything they queue) run before time moves on. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A clock whose time moves only when told to. `advance(ms)` fires due timers in time
 * order (ties in scheduling order) and lets promise callbacks run between them, so a
 * ten-minute outage is tested in milliseconds. Give it to every policy under test (the
 * `clock` option), and to the simulated dependency.
 *
 * @example
 * ```ts
 * import { TimeoutError, dependency } from 'bulwark';
 * import { VirtualClock } from 'bulwark/testing';
 *
 * const clock = new VirtualClock();
 * const slow = dependency('slow', { clock, budget: '2s' });
 * // A call that never answers: only its budget can end it.
 * const outcome = slow.execute(() => new Promise(() => {})).catch((error: unknown) => error);
 * await clock.advance(2_000); // two seconds pass at once
 * console.log((await outcome) instanceof TimeoutError); // true
 * ```
 */
export class VirtualClock implements Clock {
  private current: number;
  private seq = 0;
  private readonly maxTimers: number;
  private readonly timers = new IndexedHeap<VirtualTimer>((a, b) =>
    a.at === b.at ? a.seq < b.seq : a.at < b.at,
  );

  constructor(options: VirtualClockOptions = {}) {
    this.current = options.start ?? 0;
    this.maxTimers = options.maxTimers ?? 1_000_000;
  }

  now(): number {
    return this.current;
  }

  /** Timers scheduled and not yet fired or cleared. */
  get pending(): number {
    return this.timers.size;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const timer: VirtualTimer = { at: this.current + delay, seq: this.seq++, fn, heapIndex: -1 };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    if (handle && typeof handle === 'object') this.timers.remove(handle as VirtualTimer);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepWithTimers(
      (fn, delay) => this.setTimeout(fn, delay),
      (h) => this.clearTimeout(h),
      ms,
      signal,
    );
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`advance(ms): expected ms ≥ 0, got ${ms}`);
    await this.runUntil(this.current + ms);
  }

  /** Moves time to an absolute reading. */
  async advanceTo(time: number): Promise<void> {
    await this.runUntil(Math.max(time, this.current));
  }

  /** Fires timers until none is left (timers that reschedule themselves forever are stopped by `maxTimers`). */
  async runAll(): Promise<void> {
    await settle();
    let fired = 0;
    for (let t = this.timers.peek(); t !== undefined; t = this.timers.peek()) {
      if (++fired > this.maxTimers)
        throw new Error(`VirtualClock.runAll: more than ${this.maxTimers} timers fired`);
      this.fire(t);
      await settle();
    }
  }

  private async runUntil(target: number): Promise<void> {
    await settle();
    let fired = 0;
    for (let t = this.timers.peek(); t !== undefined && t.at <= target; t = this.timers.peek()) {
      if (++fired > this.maxTimers)
        throw new Error(`VirtualClock.advance: more than ${this.maxTimers} timers fired`);
      this.fire(t);
      await settle();
    }
    this.current = target;
    await settle();
  }

  private fire(t: VirtualTimer): void {
    this.timers.pop();
    if (t.at > this.current) this.current = t.at;
    t.fn();
  }
}
