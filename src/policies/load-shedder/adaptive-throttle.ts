import { systemClock, type Clock } from '../../core/clock.js';
import type { CallContext, Operation, Priority, Step } from '../../core/context.js';
import { LoadShedError } from './errors.js';
import { TimeoutError, withoutStack } from '../../core/errors.js';
import { ObservablePolicy } from '../../core/observable-policy.js';
import type { EventNames } from '../../core/events.js';
import { Validator } from '../../core/validate.js';
import { statusOf } from '../retry/classification.js';

/** Options of `adaptiveThrottle()`; all optional. */
export interface AdaptiveThrottleOptions {
  /**
   * How many requests the dependency may be sent per request it accepts, ≥ 1 (default 2).
   * Lower sheds sooner; higher wastes more of the dependency's effort on rejections.
   */
  k?: number;
  /** How far back the request/accept history reaches (ms or '2m'; default 2 minutes). */
  window?: number | string;
  /**
   * Whether an outcome means the dependency refused the request. Default: HTTP 429 or 503
   * (thrown, or a returned response), or a TimeoutError — overload usually shows as timeouts.
   */
  isRejected?: (outcome: unknown, kind: 'error' | 'result') => boolean;
  /** Source of randomness for the local reject decision (default Math.random). */
  random?: () => number;
  /**
   * The clock the history's time buckets run on (default: the pipeline's clock, else the system
   * clock).
   */
  clock?: Clock;
}

/** Events of an adaptive throttle, by name: subscribe with `throttle.on(name, listener)`. */
export interface AdaptiveThrottleEvents {
  /** A request was refused locally, without reaching the dependency. */
  shed: { priority: Priority; reason: 'capacity'; probability: number };
}

const ADAPTIVE_THROTTLE_EVENTS: EventNames<AdaptiveThrottleEvents> = { shed: true };

const KNOWN = ['k', 'window', 'isRejected', 'random', 'clock'];
const BUCKETS = 20;

/**
 * 429 and 503 are how HTTP says "not now"; a timeout is how an overloaded server says it.
 * The default `isRejected` of `adaptiveThrottle()`: extend it rather than start over.
 *
 * @example
 * ```ts
 * import { adaptiveThrottle, isOverloadRejection, statusOf } from 'bulwark';
 *
 * // Our gateway answers 502 when the service behind it is saturated: count that too.
 * const throttle = adaptiveThrottle({
 *   isRejected: (outcome, kind) => isOverloadRejection(outcome, kind) || statusOf(outcome) === 502,
 * });
 * ```
 */
export function isOverloadRejection(outcome: unknown, kind: 'error' | 'result'): boolean {
  if (kind === 'error' && outcome instanceof TimeoutError) return true;
  const status = statusOf(outcome);
  return status === 429 || status === 503;
}

/**
 * Client-side adaptive throttling (Google SRE book, "Handling Overload"): each request is
 * refused locally with probability max(0, (requests − k·accepts) / (requests + 1)),
 * computed from the window's history before the request itself is counted. Locally
 * refused requests count as requests, so while the dependency rejects everything the
 * probability approaches 1 yet a trickle still goes through to notice its recovery.
 * Counts live in a ring of time buckets on the clock: O(buckets) per call, no timers.
 *
 * A local refusal is a `LoadShedError` with reason 'capacity' (the dependency's capacity,
 * seen from here) and no `retryAfterMs`: the decision is random per request, so there is
 * no moment at which a retry becomes sure to pass.
 */
export class AdaptiveThrottlePolicy extends ObservablePolicy<AdaptiveThrottleEvents> {
  readonly kind = 'adaptiveThrottle';
  /** Requests the dependency may be sent per request it accepts. */
  readonly k: number;
  /** How far back the request/accept history reaches, in ms. */
  readonly window: number;
  private readonly bucketMs: number;
  private readonly random: () => number;
  private readonly isRejected: (outcome: unknown, kind: 'error' | 'result') => boolean;
  private readonly epochs = new Float64Array(BUCKETS).fill(-Infinity);
  private readonly requestCounts = new Float64Array(BUCKETS);
  private readonly acceptCounts = new Float64Array(BUCKETS);
  private sumRequests = 0;
  private sumAccepts = 0;

  constructor(options: AdaptiveThrottleOptions = {}, path = 'adaptiveThrottle') {
    const v = new Validator(path);
    const o = v.object(options, KNOWN);
    const k = v.number('k', o.k, 2, 1);
    const window = v.duration('window', o.window, 120_000, { min: 1 });
    const random = v.func('random', o.random, Math.random);
    const isRejected = v.func('isRejected', o.isRejected, isOverloadRejection);
    v.done();
    super(o.clock as Clock | undefined, ADAPTIVE_THROTTLE_EVENTS);
    this.k = k;
    this.window = window;
    this.bucketMs = window / BUCKETS;
    this.random = random;
    this.isRejected = isRejected;
  }

  private nowOrClock(now: number | undefined): number {
    return now ?? (this.clock ?? systemClock).now();
  }

  private slot(now: number): number {
    const epoch = Math.floor(now / this.bucketMs);
    const i = ((epoch % BUCKETS) + BUCKETS) % BUCKETS;
    if (this.epochs[i] !== epoch) {
      this.epochs[i] = epoch;
      this.requestCounts[i] = 0;
      this.acceptCounts[i] = 0;
    }
    return i;
  }

  /** Sums the window ending at `now` into `sumRequests` / `sumAccepts` (no allocation per call). */
  private tally(now: number): void {
    const current = Math.floor(now / this.bucketMs);
    const oldest = current - BUCKETS + 1;
    let requests = 0;
    let accepts = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const epoch = this.epochs[i]!;
      if (epoch >= oldest && epoch <= current) {
        requests += this.requestCounts[i]!;
        accepts += this.acceptCounts[i]!;
      }
    }
    this.sumRequests = requests;
    this.sumAccepts = accepts;
  }

  /** Requests (sent or refused locally) within the window ending at `now` (default: the clock's now). */
  requests(now?: number): number {
    this.tally(this.nowOrClock(now));
    return this.sumRequests;
  }

  /** Requests the dependency accepted within the window ending at `now` (default: the clock's now). */
  accepts(now?: number): number {
    this.tally(this.nowOrClock(now));
    return this.sumAccepts;
  }

  /** The probability that a request made at `now` (default: the clock's now) is refused locally. */
  probability(now?: number): number {
    this.tally(this.nowOrClock(now));
    const p = (this.sumRequests - this.k * this.sumAccepts) / (this.sumRequests + 1);
    return p > 0 ? p : 0;
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    const now = ctx.clock.now();
    const p = this.probability(now);
    const slot = this.slot(now);
    this.requestCounts[slot]! += 1;
    if (p > 0 && this.random() < p) {
      if (this.events.has('shed'))
        this.events.emit('shed', { priority: ctx.priority, reason: 'capacity', probability: p });
      return Promise.reject(
        withoutStack(
          () =>
            new LoadShedError(
              'capacity',
              `adaptive throttle: dependency is refusing requests; refused locally with probability ${p.toFixed(3)}`,
            ),
        ),
      );
    }
    return this.track(ctx, fn, next, slot, this.epochs[slot]!);
  }

  private async track<T>(
    ctx: CallContext,
    fn: Operation<T>,
    next: Step,
    slot: number,
    epoch: number,
  ): Promise<T> {
    let value: T;
    try {
      value = await next.invoke(ctx, fn);
    } catch (error) {
      if (ctx.abortedByCaller) {
        // A call its own caller abandoned says nothing about the dependency: forget it.
        if (this.epochs[slot] === epoch && this.requestCounts[slot]! > 0)
          this.requestCounts[slot]! -= 1;
      } else if (!this.isRejected(error, 'error')) this.accept(ctx.clock.now());
      throw error;
    }
    if (!this.isRejected(value, 'result')) this.accept(ctx.clock.now());
    return value;
  }

  private accept(now: number): void {
    this.acceptCounts[this.slot(now)]! += 1;
  }
}

/**
 * Client-side adaptive throttle: `adaptiveThrottle({ k: 2, window: '2m' })`. While a
 * dependency refuses much of what it is sent, most requests fail here at once instead
 * of adding to its load; see AdaptiveThrottlePolicy.
 *
 * @example
 * ```ts
 * import { adaptiveThrottle } from 'bulwark';
 *
 * const quotes = adaptiveThrottle({ k: 2, window: '2m' });
 * const quote = await quotes.execute(async (ctx) => {
 *   const res = await fetch('https://quotes.partner.example/v1/quote', { signal: ctx.signal });
 *   if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { status: res.status });
 *   return res.json();
 * });
 * quotes.probability(); // share of requests refused locally right now
 * ```
 */
export function adaptiveThrottle(options?: AdaptiveThrottleOptions): AdaptiveThrottlePolicy {
  return new AdaptiveThrottlePolicy(options);
}
