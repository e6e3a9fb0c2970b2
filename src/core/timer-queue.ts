import { systemClock, setTimerRef, type Clock, type TimerHandle } from './clock.js';

/** A node a TimerQueue links; the queue owns these three fields. */
export interface TimedWaiter {
  timerPrev: TimedWaiter | undefined;
  timerNext: TimedWaiter | undefined;
  /** When the wait ends, in ms on the queue's clock. */
  expiresAt: number;
}

// Marks the timer as firing, so a waiter added by an expiry callback arms no second timer.
const FIRING: TimerHandle = Symbol('firing');

/**
 * Fixed-timeout waits with one clock timer for all of them. Every waiter of a queue waits
 * the same `timeoutMs`, so arrival order is expiry order: a FIFO list whose head decides
 * when the one timer fires. Removal is O(1), and a head that leaves early leaves the timer
 * in place: when it fires it expires what is due and re-arms for the new head.
 */
export class TimerQueue<W extends TimedWaiter> {
  /** Waiters in the queue. */
  size = 0;
  private head: W | undefined;
  private tail: W | undefined;
  private timer: TimerHandle | undefined;
  private clock: Clock | undefined;

  /** `onExpire` runs for each waiter whose time is up, after it has left the queue. */
  constructor(
    readonly timeoutMs: number,
    private readonly onExpire: (waiter: W) => void,
  ) {}

  /** Starts `waiter`'s wait of `timeoutMs` from now on `clock`. */
  push(waiter: W, clock: Clock): void {
    waiter.expiresAt = clock.now() + this.timeoutMs;
    const tail = this.tail;
    waiter.timerPrev = tail;
    waiter.timerNext = undefined;
    if (tail === undefined) this.head = waiter;
    else tail.timerNext = waiter;
    this.tail = waiter;
    this.size++;
    if (this.timer === undefined) this.arm(clock, waiter.expiresAt);
    // A waiter is a call somebody awaits: keep the process alive while one waits.
    else if (this.size === 1 && this.timer !== FIRING) setTimerRef(this.timer, true);
  }

  /** True while `waiter` waits in this queue. */
  has(waiter: W): boolean {
    return waiter.timerPrev !== undefined || this.head === waiter;
  }

  /** Ends `waiter`'s wait without expiry; O(1). False when it was not waiting here. */
  remove(waiter: W): boolean {
    if (!this.has(waiter)) return false;
    const prev = waiter.timerPrev as W | undefined;
    const next = waiter.timerNext as W | undefined;
    if (prev === undefined) this.head = next;
    else prev.timerNext = next;
    if (next === undefined) this.tail = prev;
    else next.timerPrev = prev;
    waiter.timerPrev = waiter.timerNext = undefined;
    if (--this.size === 0) this.idle();
    return true;
  }

  /**
   * Nobody waits. On the system clock the armed timer stays (re-arming per waiter would
   * cost the setTimeout this queue avoids) but no longer keeps the process alive; on other
   * clocks (a VirtualClock) it is cleared, so runAll() never jumps to a stale expiry.
   */
  private idle(): void {
    const timer = this.timer;
    if (timer === undefined || timer === FIRING) return;
    if (this.clock === systemClock) setTimerRef(timer, false);
    else {
      this.clock!.clearTimeout(timer);
      this.timer = undefined;
    }
  }

  private arm(clock: Clock, at: number): void {
    this.clock = clock;
    this.timer = clock.setTimeout(this.fire, Math.max(0, Math.ceil(at - clock.now())));
    setTimerRef(this.timer, true);
  }

  private readonly fire = (): void => {
    const clock = this.clock!;
    this.timer = FIRING;
    const now = clock.now();
    let w = this.head;
    while (w !== undefined && w.expiresAt <= now) {
      this.remove(w);
      this.onExpire(w);
      w = this.head;
    }
    this.timer = undefined;
    if (w !== undefined) this.arm(clock, w.expiresAt);
  };
}
