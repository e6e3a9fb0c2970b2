import { setTimerRef, type Clock, type TimerHandle } from '../../core/clock.js';
import type { AbortSubscriber, CallContext, Operation, Step } from '../../core/context.js';
import { promiseSettledBy } from '../../core/settle-later.js';

/**
 * One call waiting for an open breaker's trial. It listens for its context's abort (the
 * caller's signal, or its deadline through the shared deadline heap) as an
 * AbortSubscriber, so waiting costs no timer and no listener of its own.
 */
export class OpenWaiter implements AbortSubscriber {
  prev: OpenWaiter | undefined = undefined;
  next: OpenWaiter | undefined = undefined;
  /** The queue it is in; undefined once it has left (settled exactly once). */
  queue: OpenWaiters | undefined;
  resolve!: (value: unknown) => void;
  reject!: (reason: unknown) => void;

  constructor(
    queue: OpenWaiters,
    readonly ctx: CallContext,
    readonly fn: Operation<unknown>,
    readonly step: Step,
    /** When it gives up waiting (enqueued + maxWait): FIFO order is expiry order. */
    readonly expiresAt: number,
  ) {
    this.queue = queue;
  }

  /** The call's context aborted (deadline, caller abort): leave the queue in O(1). */
  abort(reason: unknown): void {
    const queue = this.queue;
    if (queue === undefined) return;
    queue.unlink(this);
    this.reject(reason);
  }
}

/**
 * The calls waiting while a breaker is open, in arrival order, with ONE clock timer for the
 * whole queue (never one per waiter). The timer is armed for the earlier of the moment the
 * breaker has something to do (the next trial, the next slow-start admission) and the
 * head's `maxWait` expiry; every waiter has the same `maxWait`, so the head always expires
 * first. Deadlines and aborts reach a waiter through its context, not through this timer.
 */
export class OpenWaiters {
  length = 0;
  /** The owner has a drain queued in a microtask (kept here so idle breakers stay small). */
  drainQueued = false;
  head: OpenWaiter | undefined;
  private tail: OpenWaiter | undefined;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private timerClock: Clock | undefined;

  constructor(
    readonly maxQueue: number,
    readonly maxWait: number,
    /** Runs when the timer fires; the owner expires, releases and re-arms. */
    private readonly onTimer: (now: number) => void,
  ) {}

  /** Whether a timer is armed (for tests: at most one per breaker). */
  get armed(): boolean {
    return this.timer !== undefined;
  }

  /** Queues a call (the owner has checked capacity); it settles when released, failed or aborted. */
  push<T>(ctx: CallContext, fn: Operation<T>, step: Step, expiresAt: number): Promise<T> {
    const w = new OpenWaiter(this, ctx, fn as Operation<unknown>, step, expiresAt);
    const promise = promiseSettledBy<T>(w);
    const tail = this.tail;
    if (tail === undefined) this.head = w;
    else {
      tail.next = w;
      w.prev = tail;
    }
    this.tail = w;
    this.length++;
    ctx.subscribe(w);
    return promise;
  }

  /** Takes the head out of the queue (to run it); undefined when empty. */
  shift(): OpenWaiter | undefined {
    const w = this.head;
    if (w !== undefined) this.unlink(w);
    return w;
  }

  /** Removes a waiter in O(1): it stops listening to its context and leaves the timer alone. */
  unlink(w: OpenWaiter): void {
    if (w.queue !== this) return;
    w.queue = undefined;
    w.ctx.unsubscribe(w);
    const { prev, next } = w;
    if (prev === undefined) this.head = next;
    else prev.next = next;
    if (next === undefined) this.tail = prev;
    else next.prev = prev;
    w.prev = w.next = undefined;
    if (--this.length === 0) this.disarm();
  }

  /** Fails the waiters whose maxWait has run out by `now` (they are at the head). */
  expire(now: number, error: () => unknown): void {
    let w = this.head;
    while (w !== undefined && w.expiresAt <= now) {
      this.unlink(w);
      w.reject(error());
      w = this.head;
    }
  }

  /** Fails every waiter `give` says cannot be served (a walk: done only when the breaker trips). */
  failWhere(give: (w: OpenWaiter) => boolean, error: () => unknown): void {
    let w = this.head;
    while (w !== undefined) {
      const next = w.next;
      if (give(w)) {
        this.unlink(w);
        w.reject(error());
      }
      w = next;
    }
  }

  /**
   * Arms the one timer for the earlier of `at` and (with `expiry`) the head's maxWait
   * expiry; re-arms only when that
   * moves the timer earlier or the current one has fired. Nothing is armed when empty.
   */
  arm(clock: Clock, at: number, expiry: boolean): void {
    const head = this.head;
    if (head === undefined) return;
    const when = expiry ? Math.min(at, head.expiresAt) : at;
    if (when === Infinity) return;
    if (this.timer !== undefined) {
      if (this.timerAt <= when) return;
      this.timerClock!.clearTimeout(this.timer);
    }
    this.timerClock = clock;
    this.timerAt = when;
    this.timer = clock.setTimeout(this.fire, Math.max(0, Math.ceil(when - clock.now())));
    // Somebody awaits each waiter: keep the process alive while they wait.
    setTimerRef(this.timer, true);
  }

  /** Clears the timer (the queue emptied). */
  disarm(): void {
    if (this.timer === undefined) return;
    this.timerClock!.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    this.onTimer(this.timerClock!.now());
  };
}
