import { systemClock, type Clock } from '../../core/clock.js';
import type { AbortSubscriber, CallContext, Operation, Step } from '../../core/context.js';
import { formatMs } from '../../core/errors.js';
import type { EventNames } from '../../core/events.js';
import { ObservablePolicy } from '../../core/observable-policy.js';
import { Validator } from '../../core/validate.js';
import { promiseSettledBy } from '../../core/settle-later.js';
import { rejectAfterAttach } from '../../core/fail-fast.js';
import { retryAfterOf, statusOf } from '../retry/classification.js';
import type { GcraLimit, RateLimitGrant, RateLimitStore } from '../../stores/limit-store.js';
import { rateLimitError, rateLimitMessage } from './errors.js';
import { GcraState, SLOT_EPSILON, gcraLimit } from './gcra.js';
import { PacingQueue, type Paced, type PacingOwner } from './pacing-queue.js';

/** Options of `rateLimit()`; only `rate` is required. */
export interface RateLimitOptions {
  /** Calls allowed per `per` at the steady rate (a number > 0). */
  rate: number;
  /** The period `rate` is counted over (default `'1s'`). */
  per?: number | string;
  /** Extra calls allowed at once on top of the steady rate (integer ≥ 0, default 0). */
  burst?: number;
  /**
   * Longest a call may be paced (held until its slot) instead of refused (default 0:
   * refuse at once). A call is paced only if its own budget also covers the wait.
   */
  wait?: number | string;
  /**
   * Where the limit's state lives (default: this process). A `RedisRateLimitStore` from
   * `bulwark/redis` makes it one limit for every process sharing the store's prefix.
   */
  store?: RateLimitStore;
  /** Names the limit in errors, and is its key in a shared store (default `'rate-limit'`). */
  name?: string;
  /** The clock slots are timed on (default: the pipeline's clock, else the system clock). */
  clock?: Clock;
  /**
   * When the dependency answers 429 with a Retry-After (an error with `status` 429 and
   * `retryAfterMs`, as `bulwark/http` raises), pause this process's limit for that long
   * (default false). See `pause()`.
   */
  pauseOn429?: boolean;
}

/** Events of a rate limit, by name: subscribe with `limiter.on(name, listener)`. */
export interface RateLimitEvents {
  /** A call was refused: no slot now and none it could wait for. */
  rejected: { retryAfterMs: number };
  /** A paced call's slot came after `waitedMs`; it starts now. */
  paced: { waitedMs: number };
  /** A paced call's own call ended (deadline or caller abort) before its slot. */
  abandoned: { waitedMs: number; reason: unknown };
}

const KNOWN = ['rate', 'per', 'burst', 'wait', 'store', 'name', 'clock', 'pauseOn429'];

const RATE_LIMIT_EVENTS: EventNames<RateLimitEvents> = {
  rejected: true,
  paced: true,
  abandoned: true,
};

/** A call held for its slot: a queue node and the subscriber its context calls on abort. */
class PacedCall implements Paced, AbortSubscriber {
  prev: Paced | undefined = undefined;
  next: Paced | undefined = undefined;
  queued = false;
  readyAt = 0;
  resolve!: (value: unknown) => void;
  reject!: (reason: unknown) => void;
  /** The shared store's reservation, to give back if the call leaves early. */
  grant: RateLimitGrant | undefined = undefined;

  constructor(
    readonly owner: RateLimitPolicy,
    readonly ctx: CallContext,
    readonly fn: Operation<unknown>,
    readonly step: Step,
    readonly since: number,
  ) {}

  abort(reason: unknown): void {
    this.owner.abandon(this, reason);
  }
}

/**
 * At most `rate` calls per `per`, plus `burst` at once, by GCRA on the policy clock: O(1)
 * per call, no timer per call. A call over the limit is refused with a stackless
 * `RateLimitError`, or, with `wait`, held until its slot if the wait fits both `wait` and
 * the call's budget (so it never starts after its deadline). Held calls share one clock
 * timer armed for the earliest slot; one that aborts leaves at once and gives its slot back.
 */
export class RateLimitPolicy
  extends ObservablePolicy<RateLimitEvents>
  implements PacingOwner<PacedCall>
{
  readonly kind = 'rate-limit';
  /** Calls per `per`. */
  readonly rate: number;
  /** The period of `rate`, in ms. */
  readonly per: number;
  /** Extra calls allowed at once. */
  readonly burst: number;
  /** Longest a call may be paced, in ms (0: never). */
  readonly maxWait: number;
  /** The limit's name; also its key in a shared store. */
  readonly name: string | undefined;
  /** The shared store, when one was given. */
  readonly store: RateLimitStore | undefined;
  /** The limit in GCRA terms (interval and tolerance, ms). */
  readonly limit: GcraLimit;

  /** Whether a 429 with Retry-After from the dependency pauses the limit. */
  readonly pauseOn429: boolean;
  private readonly key: string;
  /** No new slot before this time (set by `pause`); -Infinity when not paused. */
  private pausedUntil = -Infinity;
  private readonly state = new GcraState();
  private readonly queue = new PacingQueue<PacedCall>(this);
  private readonly who: string | undefined;
  private readonly description: string;

  constructor(options: RateLimitOptions, path = 'rateLimit') {
    const v = new Validator(path);
    const o = v.object(options, KNOWN);
    const valid = options === undefined || (o as unknown) === options;
    if (valid && o.rate === undefined) v.problem('rate', 'a number > 0', undefined);
    let rate = 1;
    if (o.rate !== undefined) {
      if (typeof o.rate !== 'number' || !(o.rate > 0) || !Number.isFinite(o.rate))
        v.problem('rate', 'a number > 0', o.rate);
      else rate = o.rate;
    }
    const per = v.duration('per', o.per, 1000, { min: 0 });
    if (per === 0) v.problem('per', 'a duration > 0', o.per);
    const burst = v.int('burst', o.burst, 0, 0);
    const maxWait = v.duration('wait', o.wait, 0, { min: 0, allowInfinity: true });
    const store = o.store as RateLimitStore | undefined;
    if (store !== undefined && (store === null || typeof store.acquire !== 'function'))
      v.problem('store', 'a rate limit store (e.g. new RedisRateLimitStore(...))', store);
    if (o.name !== undefined && (typeof o.name !== 'string' || o.name === ''))
      v.problem('name', 'a non-empty string', o.name);
    const pauseOn429 = v.bool('pauseOn429', o.pauseOn429, false);
    v.done();
    super(o.clock as Clock | undefined, RATE_LIMIT_EVENTS);
    this.rate = rate;
    this.per = per;
    this.burst = burst;
    this.maxWait = maxWait;
    this.store = store;
    this.pauseOn429 = pauseOn429;
    this.name = o.name as string | undefined;
    this.key = this.name ?? 'rate-limit';
    this.limit = gcraLimit(rate, per, burst);
    this.who = this.name;
    this.description = `${rate} per ${formatMs(per)}${burst > 0 ? ` (+${burst} burst)` : ''}`;
  }

  /** Calls held for their slot now. */
  get waiting(): number {
    return this.queue.size;
  }

  /**
   * No call starts before `ms` from now (in this process): for a dependency that asked to be
   * left alone, e.g. a 429 with Retry-After. Calls already held keep the slots they were
   * given; new ones are paced past the pause (within `wait` and their budget) or refused.
   */
  pause(ms: number): void {
    if (!(ms > 0)) return;
    const until = (this.clock ?? systemClock).now() + ms;
    if (until > this.pausedUntil) this.pausedUntil = until;
    this.applyPause();
  }

  /** Moves the schedule past the pause, once no held call's slot depends on it. */
  private applyPause(): void {
    if (this.store !== undefined || this.queue.size > 0) return;
    const earliest = this.pausedUntil + this.limit.tolerance;
    if (this.state.tat < earliest) this.state.tat = earliest;
    this.pausedUntil = -Infinity;
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    const clock = this.clock ?? systemClock;
    const now = clock.now();
    if (this.pausedUntil !== -Infinity) {
      if (this.pausedUntil <= now) this.pausedUntil = -Infinity;
      else {
        this.applyPause();
        // Still pending (calls are held, or the store is shared): refuse until it ends.
        if (this.pausedUntil > now) return this.refuse(this.pausedUntil - now);
      }
    }
    if (this.store !== undefined) return this.acquireShared(ctx, fn, next);
    const wait = this.state.waitAt(now, this.limit);
    if (wait <= SLOT_EPSILON) {
      this.state.reserve(now, this.limit);
      return this.pauseOn429
        ? next.invoke(ctx, fn).then(undefined, this.on429)
        : next.invoke(ctx, fn);
    }
    if (!this.mayWait(ctx, wait)) return this.refuse(wait);
    if (ctx.isAborted) return Promise.reject(ctx.abortReason);
    // Reserved now: while calls are held, their slots follow each other one interval apart,
    // so the queue needs no per-call time and a call that leaves shifts the rest up.
    this.state.reserve(now, this.limit);
    const w = new PacedCall(this, ctx, fn, next, now);
    const promise = promiseSettledBy<T>(w);
    ctx.subscribe(w);
    this.queue.append(w, clock);
    return promise;
  }

  /** A wait is allowed when it fits `wait` and ends strictly before the call's deadline. */
  private mayWait(ctx: CallContext, wait: number): boolean {
    return wait <= this.maxWait + SLOT_EPSILON && wait < ctx.remaining();
  }

  private refuse(retryAfterMs: number): Promise<never> {
    if (this.events.has('rejected')) this.events.emit('rejected', { retryAfterMs });
    const error = rateLimitError(
      rateLimitMessage(this.who, this.description, retryAfterMs),
      retryAfterMs,
    );
    return rejectAfterAttach(error);
  }

  /** @internal When the head of the queue may start. */
  headDue(head: PacedCall): number {
    if (this.store !== undefined) return head.readyAt;
    // The local queue holds the newest reservations, one interval apart, ending at TAT.
    return this.state.tat - this.limit.tolerance - this.queue.size * this.limit.interval;
  }

  /** @internal The head's slot came. */
  dispatch(w: PacedCall): void {
    w.ctx.unsubscribe(w);
    if (this.events.has('paced')) {
      const clock = this.clock ?? systemClock;
      this.events.emit('paced', { waitedMs: clock.now() - w.since });
    }
    this.start(w);
  }

  private start(w: PacedCall): void {
    let running: Promise<unknown>;
    try {
      running = w.step.invoke(w.ctx, w.fn);
    } catch (error) {
      running = Promise.reject(error);
    }
    if (this.pauseOn429) running = running.then(undefined, this.on429);
    running.then(w.resolve, w.reject);
  }

  /** Created once: a 429 with Retry-After from the dependency pauses the limit. */
  private readonly on429 = (error: unknown): never => {
    if (statusOf(error) === 429) {
      const ms = retryAfterOf(error);
      if (ms !== undefined) this.pause(ms);
    }
    throw error;
  };

  /** @internal A held call's own call ended: it leaves the queue and gives its slot back. */
  abandon(w: PacedCall, reason: unknown): void {
    if (!this.queue.remove(w)) return;
    if (this.store === undefined) this.state.giveBack(this.limit);
    else if (w.grant !== undefined) this.store.cancel?.(this.key, this.limit, w.grant);
    if (this.events.has('abandoned')) {
      const clock = this.clock ?? systemClock;
      this.events.emit('abandoned', { waitedMs: clock.now() - w.since, reason });
    }
    w.reject(reason);
  }

  /** The shared-store path: one store round trip, then (maybe) a wait for the reserved slot. */
  private acquireShared<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    const clock = this.clock ?? systemClock;
    const now = clock.now();
    // The wait must end before the deadline: a store may not grant a longer one.
    const left = ctx.remaining();
    const maxWait = Math.max(0, Math.min(this.maxWait, left - 2 * SLOT_EPSILON));
    const w = new PacedCall(this, ctx, fn, next, now);
    const promise = promiseSettledBy<T>(w);
    let answer: RateLimitGrant | Promise<RateLimitGrant>;
    try {
      answer = this.store!.acquire(this.key, this.limit, maxWait, now);
    } catch (error) {
      return Promise.reject(error);
    }
    if (answer instanceof Promise)
      answer.then(
        (grant) => this.granted(w, grant, clock),
        (error: unknown) => w.reject(error),
      );
    else this.granted(w, answer, clock);
    return promise;
  }

  private granted(w: PacedCall, grant: RateLimitGrant, clock: Clock): void {
    const { ctx } = w;
    if (!grant.ok) {
      this.refuse(grant.retryAfterMs).catch(w.reject);
      return;
    }
    if (ctx.isAborted) {
      // The call ended while the store answered: its slot goes back, nothing runs.
      this.store!.cancel?.(this.key, this.limit, grant);
      w.reject(ctx.abortReason);
      return;
    }
    if (grant.waitMs <= SLOT_EPSILON) {
      this.start(w);
      return;
    }
    w.grant = grant;
    w.readyAt = clock.now() + grant.waitMs;
    if (w.readyAt >= ctx.deadline) {
      // The store's round trip ate into the budget: the slot now comes too late.
      this.store!.cancel?.(this.key, this.limit, grant);
      this.refuse(grant.waitMs).catch(w.reject);
      return;
    }
    ctx.subscribe(w);
    this.queue.insert(w, clock);
  }
}

/**
 * At most `rate` calls per `per` (default 1 s), plus `burst` at once; calls over it fail fast
 * with `RateLimitError` or, with `wait`, are held until their slot when the wait fits the
 * call's budget. Give it a `RedisRateLimitStore` to make it one limit across processes.
 *
 * @example
 * ```ts
 * import { RateLimitError, rateLimit } from 'bulwark';
 *
 * // The provider allows 100 requests/s; hold a call up to 250 ms rather than earn a 429.
 * const quota = rateLimit({ rate: 100, per: '1s', burst: 10, wait: '250ms', name: 'payments' });
 * const charge = await quota
 *   .execute((ctx) => fetch('https://payments.example/charges', { signal: ctx.signal }))
 *   .catch((error: unknown) => {
 *     if (error instanceof RateLimitError) console.log(`retry in ${error.retryAfterMs} ms`);
 *     throw error;
 *   });
 * ```
 */
export function rateLimit(options: RateLimitOptions): RateLimitPolicy {
  return new RateLimitPolicy(options);
}
