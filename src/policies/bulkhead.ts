import { systemClock, type Clock } from '../core/clock.js';
import type { AbortSubscriber, CallContext, Operation, Step } from '../core/context.js';
import { BulkheadRejectedError, type BulkheadRejectReason } from './bulkhead-error.js';
import { formatMs, withoutStack } from '../core/errors.js';
import { TimerQueue, type TimedWaiter } from '../core/timer-queue.js';
import { rejectAfterAttach, stacklessErrorOf } from '../core/fail-fast.js';
import { ObservablePolicy } from '../core/observable-policy.js';
import type { EventNames } from '../core/events.js';
import { Validator } from '../core/validate.js';
import { promiseSettledBy } from '../core/settle-later.js';
import type { ConcurrencyStore } from '../stores/limit-store.js';
import { FleetSlots } from './bulkhead-fleet.js';
import {
  handledBy,
  WrappedHandler,
  type AttemptHandler,
  type HandingStep,
} from '../core/attempt-handler.js';
import { PolicyStep, type AnyPolicy } from '../core/pipeline.js';

/** Options of `bulkhead()`; only `maxConcurrent` is required. */
export interface BulkheadOptions {
  /** Calls allowed to run at once (integer ≥ 1). */
  maxConcurrent: number;
  /** Calls allowed to wait for a slot, in arrival order (default 0: reject at once). `Infinity` must be written out. */
  maxQueue?: number;
  /** Longest wait in the queue for a slot (default Infinity), separate from the call's own deadline. */
  queueTimeout?: number | string;
  /** Named in rejection messages, e.g. the dependency this bulkhead guards. */
  name?: string;
  /** The clock queue timeouts run on (default: the pipeline's clock, else the system clock). */
  clock?: Clock;
  /**
   * Makes `maxConcurrent` fleet-wide: a `RedisConcurrencyStore` (from `bulwark/redis`) shared
   * by every process using the same prefix and `name`. The local queue rules stay as they are.
   */
  store?: ConcurrencyStore;
}

/** Events of a bulkhead, by name: subscribe with `bulkhead.on(name, listener)`. */
export interface BulkheadEvents {
  /** A call was turned away: every slot and queue place was taken, or it waited `queueTimeout` in vain. */
  rejected: { reason: BulkheadRejectReason; inFlight: number; queued: number };
  /** A call found every slot taken and joined the queue (`queued` counts it). */
  queued: { queued: number };
  /** A queued call got a slot after waiting `waitedMs`. */
  dequeued: { waitedMs: number; queued: number };
  /** A queued call left the queue because its own call ended (deadline or caller abort). */
  abandoned: { waitedMs: number; reason: unknown };
}

const BULKHEAD_EVENTS: EventNames<BulkheadEvents> = {
  rejected: true,
  queued: true,
  dequeued: true,
  abandoned: true,
};

// A 'full' refusal is built without the Error constructor (no stack: ~0.1 µs, not ~1 µs).
const StacklessRejection = stacklessErrorOf(BulkheadRejectedError);
type Writable = { -readonly [K in keyof BulkheadRejectedError]: BulkheadRejectedError[K] };
const KNOWN = ['maxConcurrent', 'maxQueue', 'queueTimeout', 'name', 'clock', 'store'];

/**
 * A call waiting for a slot: a node of the bulkhead's intrusive queue (so leaving it is
 * O(1)) and the subscriber its context calls if the call ends while it waits.
 */
class Waiter implements AbortSubscriber, TimedWaiter {
  prev: Waiter | undefined = undefined;
  next: Waiter | undefined = undefined;
  timerPrev: TimedWaiter | undefined = undefined;
  timerNext: TimedWaiter | undefined = undefined;
  expiresAt = Infinity;
  resolve!: (value: unknown) => void;
  reject!: (reason: unknown) => void;

  constructor(
    readonly owner: BulkheadPolicy,
    readonly ctx: CallContext,
    readonly fn: Operation<unknown>,
    readonly step: Step,
    readonly enqueuedAt: number,
  ) {}

  /** The call's deadline passed or its caller aborted: leave the queue with that reason. */
  abort(reason: unknown): void {
    this.owner.abandon(this, reason);
  }
}

/**
 * Caps the calls running at once at `maxConcurrent`, with a bounded FIFO queue in front.
 * A free slot costs an increment and one `.then` reaction; only a queued call allocates.
 * Queue timeouts share one clock timer armed for the head of the queue: with one fixed
 * `queueTimeout`, waiters expire in arrival order.
 */
export class BulkheadPolicy extends ObservablePolicy<BulkheadEvents> {
  readonly kind = 'bulkhead';
  /** Calls allowed to run at once. */
  readonly maxConcurrent: number;
  /** Calls allowed to wait for a slot (0: none). */
  readonly maxQueue: number;
  /** Longest wait in the queue, in ms (Infinity: only the call's own deadline limits it). */
  readonly queueTimeout: number;
  /** Named in rejection messages, when given. */
  readonly name: string | undefined;

  private running = 0;
  private length = 0;
  private head: Waiter | undefined;
  private tail: Waiter | undefined;
  // One clock timer for every waiter's queue timeout (none when it is Infinity).
  private readonly timers: TimerQueue<Waiter> | undefined;
  private readonly fullMessage: string;
  private readonly timeoutMessage: string;
  /** The fleet-wide slots, when a `store` was given. */
  private readonly fleet: FleetSlots | undefined;

  constructor(options: BulkheadOptions, path = 'bulkhead') {
    const v = new Validator(path);
    const o = v.object(options, KNOWN);
    // Required (a bulkhead without a limit guards nothing); not repeated when options is not an object.
    const valid = options === undefined || (o as unknown) === options;
    if (valid && o.maxConcurrent === undefined)
      v.problem('maxConcurrent', 'integer ≥ 1', undefined);
    const maxConcurrent = v.int('maxConcurrent', o.maxConcurrent, 1, 1);
    const maxQueue = o.maxQueue === Infinity ? Infinity : v.int('maxQueue', o.maxQueue, 0, 0);
    const queueTimeout = v.duration('queueTimeout', o.queueTimeout, Infinity, {
      min: 0,
      allowInfinity: true,
    });
    if (o.name !== undefined && typeof o.name !== 'string') v.problem('name', 'a string', o.name);
    const store = o.store as ConcurrencyStore | undefined;
    if (store !== undefined && (store === null || typeof store.acquire !== 'function'))
      v.problem('store', 'a concurrency store (e.g. new RedisConcurrencyStore(...))', store);
    v.done();
    super(o.clock as Clock | undefined, BULKHEAD_EVENTS);
    this.maxConcurrent = maxConcurrent;
    this.maxQueue = maxQueue;
    this.queueTimeout = queueTimeout;
    this.timers =
      queueTimeout === Infinity ? undefined : new TimerQueue(queueTimeout, (w) => this.expire(w));
    this.name = o.name as string | undefined;
    const who = this.name === undefined ? 'bulkhead' : `${this.name}: bulkhead`;
    this.fullMessage =
      maxQueue === 0
        ? `${who} is full (maxConcurrent ${maxConcurrent} running, no queue)`
        : `${who} is full (maxConcurrent ${maxConcurrent} running, maxQueue ${maxQueue} waiting)`;
    this.timeoutMessage = `${who}: no slot within queueTimeout ${formatMs(queueTimeout)} (maxConcurrent ${maxConcurrent})`;
    this.fleet =
      store === undefined
        ? undefined
        : new FleetSlots(store, this.name ?? 'bulkhead', maxConcurrent, who, () =>
            this.emitRejected('full'),
          );
  }

  /** Calls running now (holding a slot). */
  get inFlight(): number {
    return this.running;
  }

  /** Calls waiting for a slot now. */
  get queued(): number {
    return this.length;
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    if (this.running < this.maxConcurrent) {
      this.running++;
      const running =
        this.fleet === undefined ? next.invoke(ctx, fn) : this.fleet.run(ctx, fn, next);
      return running.then(this.releaseValue, this.releaseError) as Promise<T>;
    }
    return this.enqueue(ctx, fn, next);
  }

  /**
   * `run` right after a clock read (see Step.invokeAt): a call that takes a free local
   * slot passes the reading on to the steps inside.
   * @internal
   */
  runAt<T>(ctx: CallContext, fn: Operation<T>, next: Step, now: number): Promise<T> {
    if (
      this.running >= this.maxConcurrent ||
      this.fleet !== undefined ||
      next.invokeAt === undefined
    )
      return this.run(ctx, fn, next);
    this.running++;
    return next.invokeAt(ctx, fn, now).then(this.releaseValue, this.releaseError) as Promise<T>;
  }

  /**
   * @internal In front of a step that hands over attempt outcomes (an attempt timeout), a
   * call that takes a free local slot frees it when told the outcome: no reaction of its
   * own. See BulkheadStep.
   */
  composeStep(_inner: readonly AnyPolicy[], next: Step): Step | undefined {
    return next.invokeHandled === undefined
      ? undefined
      : new BulkheadStep(this, next as HandingStep);
  }

  /** @internal Takes a free local slot if there is one (see BulkheadStep). */
  takeFreeSlot(): boolean {
    if (this.running >= this.maxConcurrent || this.fleet !== undefined) return false;
    this.running++;
    return true;
  }

  /** @internal Frees a slot taken by takeFreeSlot (see BulkheadStep). */
  freeSlot(): void {
    this.release();
  }

  // Created once: the hot path attaches these to each call's promise with no new closure.
  private readonly releaseValue = <T>(value: T): T => {
    this.release();
    return value;
  };

  private readonly releaseError = (error: unknown): never => {
    this.release();
    throw error;
  };

  private fullError(): BulkheadRejectedError {
    const e = new StacklessRejection(this.fullMessage) as Writable;
    e.code = 'ERR_BULKHEAD_FULL';
    e.reason = 'full';
    return e as BulkheadRejectedError;
  }

  private readonly makeTimeout = (): BulkheadRejectedError =>
    new BulkheadRejectedError('queue-timeout', this.timeoutMessage);

  /** A slot frees: it passes straight to the head of the queue, so newcomers cannot jump it. */
  private release(): void {
    const w = this.head;
    if (w === undefined) {
      this.running--;
      return;
    }
    this.unlink(w);
    w.ctx.unsubscribe(w);
    if (this.events.has('dequeued')) {
      this.events.emit('dequeued', {
        waitedMs: this.currentClock().now() - w.enqueuedAt,
        queued: this.length,
      });
    }
    this.start(w);
  }

  private start(w: Waiter): void {
    let running: Promise<unknown>;
    try {
      running =
        this.fleet === undefined ? w.step.invoke(w.ctx, w.fn) : this.fleet.run(w.ctx, w.fn, w.step);
    } catch (error) {
      // A step that broke its contract must not fail the call whose release started this one.
      running = Promise.reject(error);
    }
    running.then(this.releaseValue, this.releaseError).then(w.resolve, w.reject);
  }

  private enqueue<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    if (this.length >= this.maxQueue) {
      this.emitRejected('full');
      return rejectAfterAttach(this.fullError());
    }
    // An ended call would never hear of its own abort again: do not queue it.
    if (ctx.isAborted) return Promise.reject(ctx.abortReason);
    const clock = (this.callClock = this.clock ?? ctx.clock);
    const w = new Waiter(this, ctx, fn, next, clock.now());
    const promise = promiseSettledBy<T>(w);
    const tail = this.tail;
    if (tail === undefined) this.head = w;
    else {
      tail.next = w;
      w.prev = tail;
    }
    this.tail = w;
    ctx.subscribe(w);
    if (this.timers !== undefined) this.timers.push(w, clock);
    this.length++;
    if (this.events.has('queued')) this.events.emit('queued', { queued: this.length });
    return promise;
  }

  /** @internal Called by a waiter whose call ended while it was queued. */
  abandon(w: Waiter, reason: unknown): void {
    if (w.prev === undefined && this.head !== w) return; // already left the queue
    this.unlink(w);
    if (this.events.has('abandoned')) {
      this.events.emit('abandoned', { waitedMs: this.currentClock().now() - w.enqueuedAt, reason });
    }
    w.reject(reason);
  }

  private unlink(w: Waiter): void {
    const { prev, next } = w;
    if (prev === undefined) this.head = next;
    else prev.next = next;
    if (next === undefined) this.tail = prev;
    else next.prev = prev;
    w.prev = w.next = undefined;
    this.length--;
    if (this.timers !== undefined) this.timers.remove(w);
  }

  private emitRejected(reason: BulkheadRejectReason): void {
    if (this.events.has('rejected')) {
      this.events.emit('rejected', { reason, inFlight: this.running, queued: this.length });
    }
  }

  /** The clock of the latest queued call, for a bulkhead given no clock of its own. */
  private callClock: Clock | undefined;

  private currentClock(): Clock {
    return this.clock ?? this.callClock ?? systemClock;
  }

  /** A waiter's queue timeout ran out (the timer queue has already let it go). */
  private expire(w: Waiter): void {
    this.unlink(w);
    w.ctx.unsubscribe(w);
    this.emitRejected('queue-timeout');
    w.reject(withoutStack(this.makeTimeout));
  }
}

/**
 * At most `maxConcurrent` calls run at once; up to `maxQueue` more wait in arrival order
 * for at most `queueTimeout`; the rest fail fast with `BulkheadRejectedError`. One slow
 * dependency then ties up at most `maxConcurrent` of your sockets, memory and callers.
 *
 * @example
 * ```ts
 * import { BulkheadRejectedError, bulkhead } from 'bulwark';
 *
 * // At most 10 renders at once; 20 more may wait up to 500 ms; the rest fail fast.
 * const renderer = bulkhead({ maxConcurrent: 10, maxQueue: 20, queueTimeout: '500ms' });
 *
 * const thumbnail = await renderer
 *   .execute((ctx) => fetch('https://renderer.internal/thumbnails/42', { signal: ctx.signal }))
 *   .catch((error: unknown) => {
 *     if (error instanceof BulkheadRejectedError) return undefined; // 'full' or 'queue-timeout'
 *     throw error;
 *   });
 * ```
 */
export function bulkhead(options: BulkheadOptions): BulkheadPolicy {
  return new BulkheadPolicy(options);
}

/**
 * A bulkhead in front of an attempt timeout (see Step.invokeHandled): a call with a free
 * slot hands its outcome to a handler that frees the slot and passes the outcome on.
 */
class BulkheadStep extends PolicyStep {
  private readonly releasing: WrappedHandler;

  constructor(
    private readonly bulkhead: BulkheadPolicy,
    next: HandingStep,
  ) {
    super(bulkhead, next);
    this.releasing = new WrappedHandler((outer) => new ReleasingHandler(bulkhead, outer));
  }

  invokeHandled<T>(
    ctx: CallContext,
    fn: Operation<T>,
    now: number | undefined,
    handler: AttemptHandler,
  ): Promise<T> {
    // No free slot (or a fleet-wide one): the ordinary way, its outcome told to handler.
    if (!this.bulkhead.takeFreeSlot()) return handledBy(this.invoke(ctx, fn), ctx, fn, handler);
    // The step inside tells the releasing handler even of its own throws.
    return (this.next as HandingStep).invokeHandled(ctx, fn, now, this.releasing.of(handler));
  }
}

/** Frees the bulkhead slot an attempt held, then passes its outcome on. */
class ReleasingHandler implements AttemptHandler {
  constructor(
    private readonly bulkhead: BulkheadPolicy,
    private readonly outer: AttemptHandler,
  ) {}

  failed<T>(ctx: CallContext, fn: Operation<T>, error: unknown): Promise<T> {
    this.bulkhead.freeSlot();
    return this.outer.failed(ctx, fn, error);
  }

  succeeded(ctx: CallContext, value: unknown): void {
    this.bulkhead.freeSlot();
    this.outer.succeeded?.(ctx, value);
  }
}
