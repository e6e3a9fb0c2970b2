import { systemClock, type Clock } from '../core/clock.js';
import { handledBy, type AttemptHandler } from '../core/attempt-handler.js';
import type { CallContext, Operation, Step } from '../core/context.js';
import {
  BasePolicy,
  plainRoot,
  PolicyStep,
  terminalStep,
  type AnyPolicy,
  type ExecuteOptions,
} from '../core/pipeline.js';
import { Validator } from '../core/validate.js';

/** Options of `timeout()`. */
export interface TimeoutOptions {
  /** The clock to time on (default: the pipeline's clock, else the system clock). */
  clock?: Clock;
}

/**
 * Bounds one attempt. The attempt gets its own signal, aborted at the attempt deadline;
 * the call rejects with `TimeoutError { scope: 'attempt' }` then, even if fn ignores it.
 * A tighter outer deadline wins (and then the error's scope is 'budget').
 * Created by `timeout()`, and by `budget()` for the whole-call variant.
 */
export class TimeoutPolicy extends BasePolicy {
  /**
   * `'timeout'` when made by `timeout()` (bounds each attempt), `'budget'` by `budget()` (the whole
   * call).
   */
  readonly kind: 'timeout' | 'budget' = 'timeout';
  /** The limit in ms (Infinity: no limit). */
  readonly ms: number;

  constructor(ms: number, options: TimeoutOptions | undefined, kind: 'timeout' | 'budget') {
    const v = new Validator(kind);
    const opts = v.object(options, ['clock']);
    // Required and ≥ 1, as in dependency(): an omitted limit must not mean "no limit", nor 0
    // "fail every call". No limit is written out as Infinity.
    if (ms === undefined)
      v.problem('ms', "a duration ≥ 1 ms (number of ms or '250ms', '2s', '1m') or Infinity", ms);
    const limit = v.duration('ms', ms, Infinity, { min: 1, allowInfinity: true });
    v.done();
    super(opts.clock as Clock | undefined);
    this.ms = limit;
    this.kind = kind;
  }

  /**
   * A standalone timeout called with no options (the commonest call there is) goes straight
   * to `enter`, as startCall would take it: in an app with many kinds of policies the
   * shared `execute` and startCall's dispatch over first steps see every kind, and this call
   * measured 13–18 % cheaper without them. Anything else takes the shared path.
   */
  override execute<T>(fn: Operation<T>, options?: ExecuteOptions): Promise<T> {
    const root =
      this.ms === Infinity ? undefined : plainRoot(this.clock ?? systemClock, fn, options);
    if (root === undefined) return super.execute(fn, options);
    try {
      return this.enter(root, fn, terminalStep, undefined);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    if (this.ms === Infinity) return next.invoke(ctx, fn);
    return this.runAt(ctx, fn, next, ctx.clock.now());
  }

  /**
   * `run` for a step whose caller has just read the clock (see Step.invokeAt); with
   * `handler`, the attempt's outcome goes there (see Step.invokeHandled).
   * @internal
   */
  runAt<T>(
    ctx: CallContext,
    fn: Operation<T>,
    next: Step,
    now: number,
    handler?: AttemptHandler,
  ): Promise<T> {
    if (this.ms === Infinity) return handledBy(next.invoke(ctx, fn), ctx, fn, handler);
    // The one clock read of this step (or its caller's): the guard trusts that ms > 0 puts
    // the deadline ahead.
    const deadline = now + this.ms;
    // An outer deadline that comes first already guards this call: skip the extra link…
    if (deadline >= ctx.deadline) {
      // …unless that outer deadline is a lazy budget's: then a child inherits it, which
      // arms it and rejects work that ignores its signal.
      if (ctx.isLazy)
        return ctx
          .child(ctx.deadline, 'budget', this.ms)
          .guard(fn, next, undefined, undefined, handler);
      return handledBy(next.invoke(ctx, fn), ctx, fn, handler);
    }
    return ctx
      .child(deadline, this.kind === 'timeout' ? 'attempt' : 'budget', this.ms)
      .guard(fn, next, undefined, this.ms > 0 ? this.ms : undefined, handler);
  }

  /**
   * @internal A budget over covered attempts takes a lazy step (see runLazy); as a call's
   * first step, any other finite limit guards the call's own context (see enter).
   */
  composeStep(inner: readonly AnyPolicy[], next: Step, entry: boolean): Step | undefined {
    if (this.kind === 'budget' && attemptsCovered(inner))
      return new LazyBudgetStep(this, next, entry);
    if (entry && this.ms !== Infinity) return new EntryStep(this, next);
    if (!entry && this.kind === 'timeout') return new AttemptStep(this, next);
    return undefined;
  }

  /**
   * As a call's first step: gives the call's new context this limit when it is the tighter
   * one and guards it once, with the caller's signal, instead of guarding a child of it.
   * The work then sees one context, exactly as it would see the child.
   * @internal
   */
  enter<T>(
    ctx: CallContext,
    fn: Operation<T>,
    next: Step,
    callerSignal: AbortSignal | undefined,
    now = ctx.clock.now(),
  ): Promise<T> {
    const deadline = now + this.ms;
    if (deadline < ctx.deadline) {
      ctx.tighten(deadline, this.kind === 'timeout' ? 'attempt' : 'budget', this.ms);
      return ctx.guard(fn, next, callerSignal, this.ms);
    }
    return ctx.guard(fn, next, callerSignal);
  }

  /**
   * A budget whose every attempt runs under a tighter inner `timeout()`, with nothing
   * between them that waits without subscribing to the context (decided by `pipeline()`):
   * its deadline is armed only when a wait needs it (see CallContext.runLazy). As the
   * first step of a call it tightens the call's fresh root instead of making a child.
   * @internal
   */
  runLazy<T>(
    ctx: CallContext,
    fn: Operation<T>,
    next: Step,
    entry: boolean,
    now = ctx.clock.now(),
  ): Promise<T> {
    if (!(this.ms > 0) || this.ms === Infinity) return this.run(ctx, fn, next);
    const deadline = now + this.ms;
    if (deadline >= ctx.deadline) return next.invoke(ctx, fn);
    if (entry && ctx.isFreshRoot) {
      ctx.tighten(deadline, 'budget', this.ms);
      return ctx.runLazy(fn, next, now);
    }
    return ctx.child(deadline, 'budget', this.ms).runLazy(fn, next, now);
  }
}

/**
 * Policies that make every wait of theirs either subscribe to the call's context or read
 * its signal (so a lazy budget gets armed for it), and run no work of their own.
 */
const WAITS_BY_SUBSCRIBING: ReadonlySet<string> = new Set([
  'retry',
  'circuitBreaker',
  'bulkhead',
  'loadShedder',
  'rate-limit',
]);

/**
 * True when every attempt under a budget runs inside a tighter `timeout()`: the parts
 * between them only wait by subscribing, and one of them is a timeout.
 */
function attemptsCovered(inner: readonly AnyPolicy[]): boolean {
  for (const p of inner) {
    if (p instanceof TimeoutPolicy && p.kind === 'timeout' && p.ms !== Infinity) return true;
    if (!WAITS_BY_SUBSCRIBING.has(p.kind)) return false;
  }
  return false;
}

/** A budget step that arms its deadline only for waits no attempt timeout covers. */
class LazyBudgetStep implements Step {
  constructor(
    private readonly policy: TimeoutPolicy,
    private readonly next: Step,
    private readonly entry: boolean,
  ) {}

  invoke<T>(ctx: CallContext, fn: Operation<T>): Promise<T> {
    try {
      return this.policy.runLazy(ctx, fn, this.next, this.entry);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  invokeAt<T>(ctx: CallContext, fn: Operation<T>, now: number): Promise<T> {
    try {
      return this.policy.runLazy(ctx, fn, this.next, this.entry, now);
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/** An attempt timeout inside a call: it can hand its outcomes over (see Step.invokeHandled). */
class AttemptStep extends PolicyStep {
  constructor(
    private readonly timeout: TimeoutPolicy,
    next: Step,
  ) {
    super(timeout, next);
  }

  invokeHandled<T>(
    ctx: CallContext,
    fn: Operation<T>,
    now: number | undefined,
    handler: AttemptHandler,
  ): Promise<T> {
    try {
      return this.timeout.runAt(ctx, fn, this.next, now ?? ctx.clock.now(), handler);
    } catch (error) {
      return handler.failed(ctx, fn, error);
    }
  }
}

/** A timeout or budget that is the first step of a call (see TimeoutPolicy.enter). */
class EntryStep implements Step {
  /** Names the policy in messages about the call (see kindOf in pipeline.ts). */
  readonly kind: string;

  constructor(
    private readonly policy: TimeoutPolicy,
    private readonly next: Step,
  ) {
    this.kind = policy.kind;
  }

  invoke<T>(ctx: CallContext, fn: Operation<T>): Promise<T> {
    try {
      // Reached through a part that passes the entry on (metrics): the context may be
      // guarded already (a call with options), and then this is an ordinary step.
      if (!ctx.isFreshRoot) return this.policy.run(ctx, fn, this.next);
      return this.policy.enter(ctx, fn, this.next, undefined);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  invokeAt<T>(ctx: CallContext, fn: Operation<T>, now: number): Promise<T> {
    try {
      if (!ctx.isFreshRoot) return this.policy.run(ctx, fn, this.next);
      return this.policy.enter(ctx, fn, this.next, undefined, now);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  enter<T>(ctx: CallContext, fn: Operation<T>, callerSignal: AbortSignal | undefined): Promise<T> {
    try {
      return this.policy.enter(ctx, fn, this.next, callerSignal);
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/**
 * Bounds one attempt to `ms` (≥ 1: a number or '250ms'; `Infinity` for none); see TimeoutPolicy. Put it inside
 * `retry()` so each attempt gets its own limit, and pass `ctx.signal` on so the work is
 * cancelled rather than merely abandoned.
 *
 * @example
 * ```ts
 * import { TimeoutError, timeout } from 'bulwark';
 *
 * const perAttempt = timeout('300ms');
 * const results = await perAttempt
 *   .execute((ctx) => fetch('https://search.internal/q?term=boots', { signal: ctx.signal }))
 *   .catch((error: unknown) => {
 *     if (error instanceof TimeoutError) return undefined; // error.scope === 'attempt'
 *     throw error;
 *   });
 * ```
 */
export function timeout(ms: number | string, options?: TimeoutOptions): TimeoutPolicy {
  return new TimeoutPolicy(ms as number, options, 'timeout');
}
