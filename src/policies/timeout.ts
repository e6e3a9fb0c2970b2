import type { Clock } from '../core/clock.js';
import type { CallContext, Operation, Step } from '../core/context.js';
import { BasePolicy } from '../core/pipeline.js';
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

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    if (this.ms === Infinity) return next.invoke(ctx, fn);
    const deadline = ctx.clock.now() + this.ms;
    // An outer deadline that comes first already guards this call: skip the extra link.
    if (deadline >= ctx.deadline) return next.invoke(ctx, fn);
    return ctx
      .child(deadline, this.kind === 'timeout' ? 'attempt' : 'budget', this.ms)
      .guard(fn, next);
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
