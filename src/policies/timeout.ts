import type { Clock } from '../core/clock.js';
import type { CallContext, Operation, Step } from '../core/context.js';
import { BasePolicy } from '../core/pipeline.js';
import { Validator } from '../core/validate.js';

export interface TimeoutOptions {
  clock?: Clock;
}

/**
 * Bounds one attempt. The attempt gets its own signal, aborted at the attempt deadline;
 * the call rejects with `TimeoutError { scope: 'attempt' }` then, even if fn ignores it.
 * A tighter outer deadline wins (and then the error's scope is 'budget').
 */
export class TimeoutPolicy extends BasePolicy {
  readonly kind: 'timeout' | 'budget' = 'timeout';
  readonly ms: number;

  constructor(ms: number, options: TimeoutOptions | undefined, kind: 'timeout' | 'budget') {
    const v = new Validator(kind);
    const opts = v.object(options, ['clock']);
    const limit = v.duration('ms', ms, Infinity, { min: 0, allowInfinity: true });
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

/** Bounds one attempt to `ms` (number or '250ms'); see TimeoutPolicy. */
export function timeout(ms: number | string, options?: TimeoutOptions): TimeoutPolicy {
  return new TimeoutPolicy(ms as number, options, 'timeout');
}
