import type { Clock } from '../../core/clock.js';
import type { AttemptHandler, HandingStep } from '../../core/attempt-handler.js';
import type { CallContext, Context, Operation, Step } from '../../core/context.js';
import type { AnyPolicy } from '../../core/pipeline.js';
import { ObservablePolicy } from '../../core/observable-policy.js';
import type { EventNames } from '../../core/events.js';
import { Validator } from '../../core/validate.js';
import { compileBackoff, type Backoff, type BackoffOption } from './backoff.js';
import {
  isRetryableError,
  retryAfterOf,
  retryReasonOf,
  type RetryReason,
} from './classification.js';
import { RetryBudget, type RetryBudgetOptions } from './retry-budget.js';

/** Options of `retry()`; all optional. */
export interface RetryOptions {
  /** Attempts in all, counting the first (default 3). */
  maxAttempts?: number;
  /** Delay before each retry: see README "Retry" (default exponential, full jitter). */
  backoff?: BackoffOption;
  /**
   * Whether an outcome deserves another attempt. Called with the thrown error, or with
   * the returned value (`kind === 'result'`). Default: `isRetryableError` for errors;
   * results are never retried by default (pass `isRetryableResult` here to retry HTTP
   * responses with retryable statuses).
   */
  retryOn?: (errorOrResult: unknown, ctx: Context, kind: 'error' | 'result') => boolean;
  /** Never start an attempt with less than this many ms left (default 1). */
  minAttemptTime?: number | string;
  /** A shared retry budget (or its options, for a budget of this policy's own). */
  retryBudget?: RetryBudget | RetryBudgetOptions;
  /** Source of randomness for jitter (default Math.random), injectable for reproducible tests. */
  random?: () => number;
  /** The clock to sleep on (default: the pipeline's clock, else the system clock). */
  clock?: Clock;
}

/**
 * Why retrying stopped: every attempt was used, too little time was left before the
 * deadline, the retry budget refused (`'budget'`: the retry allowance, not the time
 * budget, which ends as `'deadline'`), or the outcome was not worth retrying.
 */
export type GiveUpReason = 'attempts' | 'deadline' | 'budget' | 'not-retryable';

/** Events of a retry policy, by name: subscribe with `policy.on(name, listener)`. */
export interface RetryEvents {
  /** A retry is about to sleep `delay` ms and then run attempt `attempt`. */
  retry: { attempt: number; delay: number; reason: RetryReason; outcome: unknown };
  /** The retry budget refused a retry. */
  retryBudgetExhausted: { attempt: number };
  /** @deprecated Renamed `retryBudgetExhausted`; this name subscribes to it, for this release. */
  budgetExhausted: { attempt: number };
  /** Retrying stopped with a failed outcome. */
  giveUp: { attempt: number; reason: GiveUpReason; outcome: unknown };
}

const RETRY_EVENTS: EventNames<RetryEvents> = {
  retry: true,
  retryBudgetExhausted: true,
  budgetExhausted: 'retryBudgetExhausted',
  giveUp: true,
};

const KNOWN = [
  'maxAttempts',
  'backoff',
  'retryOn',
  'minAttemptTime',
  'retryBudget',
  'random',
  'clock',
];

/**
 * Retries failed attempts with backoff, inside the call's deadline: it never sleeps past
 * the deadline and never starts an attempt that cannot get `minAttemptTime`; it gives up
 * early instead and rethrows the last error unchanged.
 */
export class RetryPolicy extends ObservablePolicy<RetryEvents> {
  readonly kind = 'retry';
  /** Attempts in all, counting the first. */
  readonly maxAttempts: number;
  /** ms an attempt needs at least: a retry that would start with less left is not made. */
  readonly minAttemptTime: number;
  /** The retry budget this policy draws on (shared or its own), if it has one. */
  readonly retryBudget: RetryBudget | undefined;
  private readonly backoff: Backoff;
  private readonly retryOn: RetryOptions['retryOn'];

  constructor(options: RetryOptions = {}, path = 'retry') {
    const v = new Validator(path);
    const o = v.object(options, KNOWN);
    const maxAttempts = v.int('maxAttempts', o.maxAttempts, 3, 1);
    const random = v.func('random', o.random, Math.random);
    const backoff = compileBackoff(o.backoff, v, random);
    const retryOn = v.func<RetryOptions['retryOn']>('retryOn', o.retryOn, undefined);
    const minAttemptTime = v.duration('minAttemptTime', o.minAttemptTime, 1);
    let budget: RetryBudget | undefined;
    if (o.retryBudget instanceof RetryBudget) budget = o.retryBudget;
    else if (o.retryBudget !== undefined) {
      try {
        budget = new RetryBudget(o.retryBudget as RetryBudgetOptions, v.path('retryBudget'));
      } catch (error) {
        v.problems.push(...((error as { problems?: [] }).problems ?? []));
      }
    }
    v.done();
    super(o.clock as Clock | undefined, RETRY_EVENTS);
    this.maxAttempts = maxAttempts;
    this.backoff = backoff;
    this.retryOn = retryOn;
    this.minAttemptTime = minAttemptTime;
    this.retryBudget = budget;
  }

  /**
   * @deprecated Renamed `retryBudget` ("budget" alone means a time limit in bulwark); this
   * alias is kept for this release.
   */
  get budget(): RetryBudget | undefined {
    return this.retryBudget;
  }

  private shouldRetry(outcome: unknown, ctx: CallContext, kind: 'error' | 'result'): boolean {
    if (this.retryOn !== undefined) return this.retryOn(outcome, ctx, kind) === true;
    return kind === 'error' && isRetryableError(outcome);
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    if (this.retryBudget !== undefined) this.retryBudget.recordRequest(ctx.clock.now());
    ctx.attempt = 1;
    // The first attempt needs no loop: one reaction on its promise; only the failure
    // path (or a user retryOn that inspects results) goes further. (Kept as a single
    // expression: V8 optimises this shape several times better than a branchy one.)
    if (this.retryOn !== undefined)
      return this.runInspectingResults(ctx, fn, next.invoke(ctx, fn), next);
    return next
      .invoke(ctx, fn)
      .then(undefined, (error: unknown) => this.afterFailure(ctx, fn, next, error));
  }

  /**
   * `run` right after a clock read (a budget's): the first attempt starts at `now` (see
   * Step.invokeAt); the retries read the clock themselves.
   * @internal
   */
  runAt<T>(ctx: CallContext, fn: Operation<T>, next: Step, now: number): Promise<T> {
    if (next.invokeAt === undefined) return this.run(ctx, fn, next);
    if (this.retryBudget !== undefined) this.retryBudget.recordRequest(now);
    ctx.attempt = 1;
    if (this.retryOn !== undefined)
      return this.runInspectingResults(ctx, fn, next.invokeAt(ctx, fn, now), next);
    return next
      .invokeAt(ctx, fn, now)
      .then(undefined, (error: unknown) => this.afterFailure(ctx, fn, next, error));
  }

  private runInspectingResults<T>(
    ctx: CallContext,
    fn: Operation<T>,
    first: Promise<T>,
    next: Step,
  ): Promise<T> {
    return first.then(
      (value) =>
        this.shouldRetry(value, ctx, 'result')
          ? this.continueAfter(ctx, fn, next, value, false)
          : value,
      (error: unknown) => this.afterFailure(ctx, fn, next, error),
    );
  }

  /**
   * @internal When each attempt runs in a step that can hand its failures over (an attempt
   * timeout) and no `retryOn` inspects results, the first attempt's success needs no
   * reaction here: see RetryStep.
   */
  composeStep(_inner: readonly AnyPolicy[], next: Step): Step | undefined {
    if (this.retryOn !== undefined || next.invokeHandled === undefined) return undefined;
    return new RetryStep(this, next as HandingStep);
  }

  /** @internal The first attempt of a call run by a RetryStep; `now` if just read. */
  runHanded<T>(
    ctx: CallContext,
    fn: Operation<T>,
    next: HandingStep,
    handler: AttemptHandler,
    now: number | undefined,
  ): Promise<T> {
    if (this.retryBudget !== undefined) this.retryBudget.recordRequest((now ??= ctx.clock.now()));
    ctx.attempt = 1;
    return next.invokeHandled(ctx, fn, now, handler);
  }

  /** @internal What a failed attempt becomes: the next attempt, or the failure. */
  afterFailure<T>(ctx: CallContext, fn: Operation<T>, next: Step, error: unknown): Promise<T> {
    // The call itself is over (its deadline passed or the caller aborted): stop.
    if (ctx.isAborted) return Promise.reject(error);
    if (!this.shouldRetry(error, ctx, 'error')) {
      this.giveUp(ctx.attempt, 'not-retryable', error);
      return Promise.reject(error);
    }
    return this.continueAfter(ctx, fn, next, error, true);
  }

  /** Retries after attempt `ctx.attempt` ended with a retryable `outcome`. */
  private async continueAfter<T>(
    ctx: CallContext,
    fn: Operation<T>,
    next: Step,
    outcome: unknown,
    failed: boolean,
  ): Promise<T> {
    const clock = ctx.clock;
    let previousDelay = 0;
    for (let attempt = ctx.attempt; ; attempt++) {
      let stop: GiveUpReason | undefined;
      let delay = 0;
      if (attempt >= this.maxAttempts) stop = 'attempts';
      else {
        const requested = retryAfterOf(outcome);
        delay = requested ?? this.backoff(attempt, previousDelay, outcome);
        // Retry-After and backoff alike: if sleeping leaves no time for an attempt, stop now.
        if (delay + this.minAttemptTime > ctx.remaining()) stop = 'deadline';
        else if (this.retryBudget !== undefined && !this.retryBudget.tryAcquire(clock.now())) {
          stop = 'budget';
          this.events.emit('retryBudgetExhausted', { attempt });
        }
      }
      if (stop === undefined) {
        if (this.events.has('retry')) {
          this.events.emit('retry', {
            attempt: attempt + 1,
            delay,
            reason: retryReasonOf(outcome),
            outcome,
          });
        }
        if (delay > 0) await clock.sleep(delay, ctx.signal);
        if (ctx.remaining() < this.minAttemptTime) stop = 'deadline';
      }
      if (stop !== undefined) {
        this.giveUp(attempt, stop, outcome);
        if (failed) throw outcome;
        return outcome as T;
      }
      previousDelay = delay;

      ctx.attempt = attempt + 1;
      try {
        const value = await next.invoke(ctx, fn);
        if (this.retryOn === undefined || !this.shouldRetry(value, ctx, 'result')) return value;
        outcome = value;
        failed = false;
      } catch (error) {
        if (ctx.isAborted) throw error;
        if (!this.shouldRetry(error, ctx, 'error')) {
          this.giveUp(attempt + 1, 'not-retryable', error);
          throw error;
        }
        outcome = error;
        failed = true;
      }
    }
  }

  private giveUp(attempt: number, reason: GiveUpReason, outcome: unknown): void {
    if (this.events.has('giveUp')) this.events.emit('giveUp', { attempt, reason, outcome });
  }
}

/**
 * Retries with exponential backoff and full jitter by default; see RetryOptions.
 * Only errors that `isRetryableError` accepts are retried unless `retryOn` says otherwise:
 * a 400 or the caller's own abort is returned at once.
 *
 * @example
 * ```ts
 * import { retry } from 'bulwark';
 *
 * const policy = retry({ maxAttempts: 3, backoff: { initial: '100ms', max: '2s' } });
 * policy.on('retry', ({ attempt, delay, reason }) =>
 *   console.warn(`attempt ${attempt} in ${delay} ms (${reason})`),
 * );
 *
 * const order = await policy.execute(async (ctx) => {
 *   const res = await fetch('https://orders.internal/orders/7', { signal: ctx.signal });
 *   if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { status: res.status });
 *   return res.json();
 * });
 * ```
 */
export function retry(options?: RetryOptions): RetryPolicy {
  return new RetryPolicy(options);
}

/**
 * A retry whose attempts hand their failures back to it (see Step.invokeHandled): the
 * first attempt's promise is the call's, with no reaction of the retry's on it.
 */
class RetryStep implements Step, AttemptHandler {
  /** Names the policy in messages about the call (see kindOf in pipeline.ts). */
  readonly kind = 'retry';

  constructor(
    private readonly policy: RetryPolicy,
    private readonly next: HandingStep,
  ) {}

  invoke<T>(ctx: CallContext, fn: Operation<T>): Promise<T> {
    try {
      return this.policy.runHanded(ctx, fn, this.next, this, undefined);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  invokeAt<T>(ctx: CallContext, fn: Operation<T>, now: number): Promise<T> {
    try {
      return this.policy.runHanded(ctx, fn, this.next, this, now);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  failed<T>(ctx: CallContext, fn: Operation<T>, error: unknown): Promise<T> {
    return this.policy.afterFailure(ctx, fn, this.next, error);
  }
}
