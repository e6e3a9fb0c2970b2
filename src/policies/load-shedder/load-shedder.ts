import { systemClock, type Clock } from '../../core/clock.js';
import {
  PRIORITIES,
  type AbortSubscriber,
  type CallContext,
  type Operation,
  type Priority,
  type Step,
} from '../../core/context.js';
import { BulkheadRejectedError } from '../bulkhead-error.js';
import { LoadShedError, type LoadShedReason } from './errors.js';
import { rejectAfterAttach } from '../../core/fail-fast.js';
import { TimeoutError, formatMs, withoutStack } from '../../core/errors.js';
import { TimerQueue, type TimedWaiter } from '../../core/timer-queue.js';
import { ObservablePolicy } from '../../core/observable-policy.js';
import type { EventNames } from '../../core/events.js';
import { Validator } from '../../core/validate.js';
import { FixedLimiter } from './limits/fixed.js';
import type { LoadShedderEvents, LoadShedderOptions } from './options.js';
import { eventLoopPressure, type PressureProbe } from './pressure.js';
import type { Limiter } from './limits/limiter.js';

const LOAD_SHEDDER_EVENTS: EventNames<LoadShedderEvents> = { shed: true, limitChange: true };

const KNOWN = [
  'limit',
  'priorityShares',
  'minRemainingBudget',
  'maxEventLoopDelay',
  'pressure',
  'queue',
  'isDrop',
  'retryAfter',
  'clock',
];
const QUEUE_KNOWN = ['maxSize', 'timeout', 'overloadTimeout', 'interval', 'lifo'];
const RANK: Readonly<Record<Priority, number>> = { critical: 0, high: 1, normal: 2, low: 3 };
const DEFAULT_SHARES: Readonly<Record<Priority, number>> = {
  critical: 1,
  high: 0.95,
  normal: 0.8,
  low: 0.5,
};

function isOverloadDrop(error: unknown): boolean {
  return (
    error instanceof TimeoutError ||
    error instanceof LoadShedError ||
    error instanceof BulkheadRejectedError
  );
}

/** A call waiting in the queue: a node of its priority's doubly linked list. */
class Waiter implements AbortSubscriber, TimedWaiter {
  prev: Waiter | undefined;
  next: Waiter | undefined;
  timerPrev: TimedWaiter | undefined;
  timerNext: TimedWaiter | undefined;
  expiresAt = Infinity;
  /** The timer queue of the timeout it waits under, if finite. */
  timers: TimerQueue<Waiter> | undefined;
  queued = true;

  constructor(
    readonly shedder: LoadShedderPolicy,
    readonly ctx: CallContext,
    readonly rank: number,
    readonly enqueuedAt: number,
    readonly resolve: () => void,
    readonly reject: (error: unknown) => void,
  ) {}

  /** The call's context aborted (deadline, caller) while it waited. */
  abort(reason: unknown): void {
    this.shedder.leave(this, reason);
  }
}

/**
 * Refuses work before the process saturates: a concurrency limit (fixed or adaptive)
 * split into per-priority shares, an optional CoDel-style queue in front of it, and
 * cheap early refusals for calls that cannot meet their deadline or arrive while the
 * event loop is lagging. Every refusal is a `LoadShedError` built without a stack.
 */
export class LoadShedderPolicy extends ObservablePolicy<LoadShedderEvents> {
  readonly kind = 'loadShedder';
  /** Where the concurrency limit comes from (a `FixedLimiter` for a number). */
  readonly limiter: Limiter;
  /** Share of the limit each priority may fill, defaults filled in. */
  readonly priorityShares: Readonly<Record<Priority, number>>;
  /** Calls with less than this many ms left are refused (0: off). */
  readonly minRemainingBudget: number;
  /**
   * Non-critical calls are refused while the event-loop delay is above this, in ms (Infinity: off).
   */
  readonly maxEventLoopDelay: number;
  /** The `retryAfterMs` hint, in ms, on capacity, priority and event-loop refusals. */
  readonly retryAfter: number;
  /** Calls admitted and not yet settled. */
  inFlight = 0;
  /** Calls waiting in the queue. */
  queued = 0;

  private readonly shares: readonly number[];
  private readonly isDrop: (error: unknown) => boolean;
  private readonly pressureOption: PressureProbe | undefined;
  private pressure: PressureProbe | undefined;
  private readonly queueMax: number;
  private readonly queueTimeout: number;
  private readonly overloadTimeout: number;
  // One timer per timeout, not one per waiter.
  private readonly queueTimers: TimerQueue<Waiter>;
  private readonly overloadTimers: TimerQueue<Waiter>;
  private readonly interval: number;
  private readonly lifo: boolean;
  private readonly heads: (Waiter | undefined)[] = [undefined, undefined, undefined, undefined];
  private readonly tails: (Waiter | undefined)[] = [undefined, undefined, undefined, undefined];
  /** When the queue last went from empty to non-empty: it is "standing" once this is `interval` old. */
  private lastEmpty = 0;
  /** The limiter's limit as last read, and what it allows each priority (by rank). */
  private rawLimit: number;
  private effectiveLimit = 1;
  private readonly allowance = [1, 1, 1, 1];

  constructor(options: LoadShedderOptions = {}, path = 'loadShedder') {
    const v = new Validator(path);
    const o = v.object(options, KNOWN);

    let limiter: Limiter = new FixedLimiter(Infinity);
    if (typeof o.limit === 'number') {
      if (o.limit === Infinity || (Number.isInteger(o.limit) && o.limit >= 1))
        limiter = new FixedLimiter(o.limit);
      else v.problem('limit', 'an integer ≥ 1, Infinity, or a limiter such as adaptive()', o.limit);
    } else if (o.limit !== undefined) {
      const l = o.limit as Partial<Limiter> | null;
      if (
        l !== null &&
        typeof l === 'object' &&
        typeof l.onSample === 'function' &&
        typeof l.limit === 'number'
      ) {
        limiter = l as Limiter;
      } else
        v.problem('limit', 'an integer ≥ 1, Infinity, or a limiter such as adaptive()', o.limit);
    }

    const sharesPath = new Validator(v.path('priorityShares'));
    const so = sharesPath.object(o.priorityShares, PRIORITIES);
    const shares = { ...DEFAULT_SHARES };
    for (const p of PRIORITIES) {
      shares[p] = sharesPath.number(
        p,
        so[p],
        DEFAULT_SHARES[p],
        Number.MIN_VALUE,
        1,
        'a number in (0, 1]',
      );
    }
    v.problems.push(...sharesPath.problems);

    const minRemainingBudget = v.duration('minRemainingBudget', o.minRemainingBudget, 0);
    const maxEventLoopDelay = v.duration('maxEventLoopDelay', o.maxEventLoopDelay, Infinity, {
      allowInfinity: true,
    });
    const retryAfter = v.duration('retryAfter', o.retryAfter, 1000);
    const isDrop = v.func('isDrop', o.isDrop, isOverloadDrop);
    let pressure: PressureProbe | undefined;
    if (o.pressure !== undefined) {
      const p = o.pressure as Partial<PressureProbe> | null;
      if (p !== null && typeof p === 'object' && typeof p.eventLoopDelay === 'function')
        pressure = p as PressureProbe;
      else v.problem('pressure', 'an object with eventLoopDelay(): number', o.pressure);
    }

    const qv = new Validator(v.path('queue'));
    const q = qv.object(o.queue, QUEUE_KNOWN);
    const queueMax = o.queue === undefined ? 0 : qv.int('maxSize', q.maxSize, NaN, 0);
    if (o.queue !== undefined && q.maxSize === undefined)
      qv.problem('maxSize', 'an integer ≥ 0', undefined);
    const queueTimeout = qv.duration('timeout', q.timeout, 1000, { allowInfinity: true });
    const overloadTimeout = qv.duration(
      'overloadTimeout',
      q.overloadTimeout,
      Math.min(5, queueTimeout),
    );
    const interval = qv.duration('interval', q.interval, 100);
    const lifo = qv.bool('lifo', q.lifo, false);
    v.problems.push(...qv.problems);
    v.done();

    super(o.clock as Clock | undefined, LOAD_SHEDDER_EVENTS);
    this.limiter = limiter;
    this.priorityShares = shares;
    this.shares = PRIORITIES.map((p) => shares[p]);
    this.minRemainingBudget = minRemainingBudget;
    this.maxEventLoopDelay = maxEventLoopDelay;
    this.retryAfter = retryAfter;
    this.isDrop = isDrop;
    this.pressureOption = pressure;
    this.queueMax = queueMax;
    this.queueTimeout = queueTimeout;
    this.overloadTimeout = overloadTimeout;
    this.queueTimers = new TimerQueue(queueTimeout, (w) => this.expire(w));
    this.overloadTimers = new TimerQueue(overloadTimeout, (w) => this.expire(w));
    this.interval = interval;
    this.lifo = lifo;
    this.rawLimit = NaN;
    this.refresh(false);
  }

  /** The concurrency limit in force now. */
  get limit(): number {
    const raw = this.limiter.limit;
    return raw === this.rawLimit ? this.effectiveLimit : raw >= 1 ? Math.floor(raw) : 1;
  }

  /** Re-reads the limiter and recomputes each priority's allowance. */
  private refresh(announce: boolean): void {
    const raw = this.limiter.limit;
    this.rawLimit = raw;
    // A limiter of one's own may return anything: keep at least one slot, whole slots only.
    const limit = raw >= 1 ? Math.floor(raw) : 1;
    if (limit === this.effectiveLimit && announce) return;
    this.effectiveLimit = limit;
    for (let r = 0; r < 4; r++) {
      const cap = Math.floor(this.shares[r]! * limit);
      this.allowance[r] = cap > 1 ? cap : 1;
    }
    if (announce && this.events.has('limitChange')) this.events.emit('limitChange', { limit });
    if (announce && this.queued > 0) this.drain();
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    if (this.clock === undefined) this.callClock = ctx.clock;
    const priority = ctx.priority;
    if (this.minRemainingBudget > 0) {
      const left = ctx.remaining();
      if (left < this.minRemainingBudget) {
        return this.shed(
          priority,
          'deadline',
          `load shed: ${formatMs(left)} left before the deadline, below minRemainingBudget ${formatMs(this.minRemainingBudget)}`,
          undefined,
        );
      }
    }
    if (this.maxEventLoopDelay !== Infinity && priority !== 'critical') {
      const delay = (this.pressure ??= this.pressureOption ?? eventLoopPressure()).eventLoopDelay();
      if (delay > this.maxEventLoopDelay) {
        return this.shed(
          priority,
          'event-loop',
          `load shed: event-loop delay ${formatMs(delay)} is above maxEventLoopDelay ${formatMs(this.maxEventLoopDelay)}`,
          this.retryAfter,
        );
      }
    }
    if (this.limiter.limit !== this.rawLimit) this.refresh(true);
    const rank = RANK[priority];
    if (this.inFlight < this.allowance[rank]!) {
      this.inFlight++;
      return this.admitted(ctx, fn, next);
    }
    if (this.queueMax > 0) return this.wait(ctx, fn, next, rank);
    return this.refuse(priority, rank);
  }

  private refuse<T>(priority: Priority, rank: number): Promise<T> {
    if (this.inFlight >= this.effectiveLimit) {
      return this.shed(
        priority,
        'capacity',
        `load shed: ${this.inFlight} calls in flight reached the limit of ${this.effectiveLimit}`,
        this.retryAfter,
      );
    }
    return this.shed(
      priority,
      'priority',
      `load shed: ${priority} work may fill ${this.allowance[rank]} of ${this.effectiveLimit} slots and ${this.inFlight} are in flight`,
      this.retryAfter,
    );
  }

  private shed<T>(
    priority: Priority,
    reason: LoadShedReason,
    message: string,
    retryAfterMs: number | undefined,
  ): Promise<T> {
    if (this.events.has('shed')) this.events.emit('shed', { priority, reason });
    // No stack, no Error constructor, and rejected once the caller listens: a refusal
    // under overload must cost less than the work it spares.
    return rejectAfterAttach(LoadShedError.refusal(reason, message, retryAfterMs));
  }

  /** Runs an admitted call (its slot already taken), feeds the limiter, frees the slot. */
  private async admitted<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    const sampling = this.limiter.adaptive;
    const inFlight = this.inFlight;
    const start = sampling ? ctx.clock.now() : 0;
    try {
      const value = await next.invoke(ctx, fn);
      // A result that arrives after the deadline was wasted work: for the limiter, a drop.
      if (sampling) this.sample(ctx, start, inFlight, ctx.abortReason instanceof TimeoutError);
      return value;
    } catch (error) {
      // Timeouts and downstream sheds are drops. A caller or a hedge walking away, or an
      // ordinary error, says nothing about capacity: no sample.
      if (
        sampling &&
        !ctx.abortedByCaller &&
        (ctx.abortReason instanceof TimeoutError || this.isDrop(error))
      ) {
        this.sample(ctx, start, inFlight, true);
      }
      throw error;
    } finally {
      this.inFlight--;
      if (this.queued > 0) this.drain();
    }
  }

  private sample(ctx: CallContext, start: number, inFlight: number, dropped: boolean): void {
    const now = ctx.clock.now();
    this.limiter.onSample({ rtt: now - start, inFlight, dropped, now });
    if (this.limiter.limit !== this.rawLimit) this.refresh(true);
  }

  /** The clock of the latest call, for a shedder given no clock of its own. */
  private callClock: Clock | undefined;

  private now(): number {
    return (this.clock ?? this.callClock ?? systemClock).now();
  }

  /** True once the queue has not been empty for a whole `interval`. */
  private standing(now: number): boolean {
    return this.queued > 0 && now - this.lastEmpty >= this.interval;
  }

  private async wait<T>(ctx: CallContext, fn: Operation<T>, next: Step, rank: number): Promise<T> {
    if (this.queued >= this.queueMax && !this.evictBelow(rank)) {
      return this.refuse(ctx.priority, rank);
    }
    await new Promise<void>((resolve, reject) =>
      this.enqueue(new Waiter(this, ctx, rank, this.now(), resolve, reject)),
    );
    return this.admitted(ctx, fn, next);
  }

  /** Makes room for a `rank` call by letting go the oldest waiter of the lowest lower priority. */
  private evictBelow(rank: number): boolean {
    for (let r = 3; r > rank; r--) {
      const w = this.heads[r];
      if (w !== undefined) {
        this.unlink(w);
        this.shedWaiter(w, 'priority', `load shed: let go from the queue for higher-priority work`);
        return true;
      }
    }
    return false;
  }

  private enqueue(w: Waiter): void {
    const now = w.enqueuedAt;
    if (this.queued === 0) this.lastEmpty = now;
    // Critical waiters are served first, so they stand only behind other critical work:
    // the short CoDel timeout would shed exactly the work the queue exists to protect.
    const timers = w.rank > 0 && this.standing(now) ? this.overloadTimers : this.queueTimers;
    const tail = this.tails[w.rank];
    w.prev = tail;
    if (tail === undefined) this.heads[w.rank] = w;
    else tail.next = w;
    this.tails[w.rank] = w;
    this.queued++;
    w.ctx.subscribe(w);
    if (timers.timeoutMs !== Infinity) {
      w.timers = timers;
      timers.push(w, this.clock ?? w.ctx.clock);
    }
  }

  /** Removes a waiter from its list, its timer and its context; O(1). */
  private unlink(w: Waiter): void {
    if (!w.queued) return;
    w.queued = false;
    if (w.prev === undefined) this.heads[w.rank] = w.next;
    else w.prev.next = w.next;
    if (w.next === undefined) this.tails[w.rank] = w.prev;
    else w.next.prev = w.prev;
    w.prev = w.next = undefined;
    if (w.timers !== undefined) w.timers.remove(w);
    w.ctx.unsubscribe(w);
    this.queued--;
  }

  private shedWaiter(w: Waiter, reason: LoadShedReason, message: string): void {
    const priority = w.ctx.priority;
    if (this.events.has('shed')) this.events.emit('shed', { priority, reason });
    w.reject(
      withoutStack(
        () =>
          new LoadShedError(reason, message, reason === 'deadline' ? undefined : this.retryAfter),
      ),
    );
  }

  private expire(w: Waiter): void {
    if (!w.queued) return;
    const timeout = w.timers!.timeoutMs;
    this.unlink(w);
    this.shedWaiter(
      w,
      'capacity',
      `load shed: no slot within the queue timeout of ${formatMs(timeout)}`,
    );
  }

  /** @internal the waiter's context aborted: leave the queue and reject with its reason. */
  leave(w: Waiter, reason: unknown): void {
    if (!w.queued) return;
    this.unlink(w);
    w.reject(reason);
  }

  /** Admits waiters while slots allow: highest priority first, FIFO (LIFO while standing). */
  private drain(): void {
    while (this.queued > 0) {
      let w: Waiter | undefined;
      for (let r = 0; r < 4; r++) {
        if (this.heads[r] !== undefined && this.inFlight < this.allowance[r]!) {
          w = this.heads[r];
          break;
        }
      }
      if (w === undefined) return;
      const now = this.now();
      const standing = this.standing(now);
      if (standing && this.lifo) w = this.tails[w.rank]!;
      this.unlink(w);
      // CoDel: in a standing queue, a call that already waited past the short timeout is stale.
      if (standing && w.rank > 0 && now - w.enqueuedAt > this.overloadTimeout) {
        this.shedWaiter(
          w,
          'capacity',
          `load shed: waited ${formatMs(now - w.enqueuedAt)} in a standing queue`,
        );
        continue;
      }
      if (this.minRemainingBudget > 0 && w.ctx.remaining() < this.minRemainingBudget) {
        this.shedWaiter(
          w,
          'deadline',
          `load shed: too little time left before the deadline after queueing`,
        );
        continue;
      }
      this.inFlight++;
      w.resolve();
    }
  }
}

/**
 * A load shedder: `loadShedder({ limit: adaptive({ algorithm: 'gradient' }), queue: { maxSize: 50 } })`.
 * See LoadShedderOptions for every option and its default. Refusing early and cheaply
 * keeps the work that is admitted fast; an overloaded process that accepts everything
 * ends up serving nobody in time.
 *
 * @example
 * ```ts
 * import { adaptive, loadShedder } from 'bulwark';
 *
 * const shedder = loadShedder({
 *   limit: adaptive({ algorithm: 'gradient', min: 10, max: 500 }),
 *   queue: { maxSize: 50 },
 *   minRemainingBudget: '20ms', // too late to be useful: refuse now
 * });
 * // Low-priority work is refused first once the limit is reached.
 * const res = await shedder.execute(
 *   (ctx) => fetch('https://reports.internal/nightly', { signal: ctx.signal }),
 *   { priority: 'low', budget: 5_000 },
 * );
 * ```
 */
export function loadShedder(options?: LoadShedderOptions): LoadShedderPolicy {
  return new LoadShedderPolicy(options);
}

export type { LoadShedderEvents, LoadShedderOptions, LoadShedderQueueOptions } from './options.js';
export { EventLoopDelayProbe, eventLoopPressure, type PressureProbe } from './pressure.js';
