import type { Clock } from '../core/clock.js';
import {
  propertyKey,
  type CallContext,
  type Context,
  type Operation,
  type Step,
} from '../core/context.js';
import { isAbortError } from '../core/errors.js';
import { ObservablePolicy } from '../core/observable-policy.js';
import type { EventNames } from '../core/events.js';
import { Validator } from '../core/validate.js';

/** Set on the call's context when the fallback replaced the outcome (read by metrics). */
export const FELL_BACK = propertyKey<boolean>('fellBack');

/** What a fallback replaced: a thrown error, or a returned value its `on` option rejected. */
export type FallbackKind = 'error' | 'result';

/** Makes the substitute value from the outcome that triggered it (the error, or an unwanted result). */
export type FallbackFunction<F> = (errorOrResult: unknown, ctx: Context) => F | PromiseLike<F>;

/** Options of `fallback()`. */
export interface FallbackOptions {
  /**
   * Which outcomes the fallback replaces. Called with the thrown error (`kind === 'error'`),
   * and — only when given — with each returned value (`kind === 'result'`). Default: every
   * thrown error except an `AbortError`; results never.
   */
  on?: (errorOrResult: unknown, ctx: Context, kind: FallbackKind) => boolean;
  /**
   * The clock `execute()` measures its `budget` and `deadline` options on (default: the pipeline's,
   * else the system clock).
   */
  clock?: Clock;
}

/** Events of a fallback policy, by name: subscribe with `policy.on(name, listener)`. */
export interface FallbackEvents {
  /** The fallback replaced an outcome of kind `kind`. */
  fallback: { kind: FallbackKind; outcome: unknown };
}

const FALLBACK_EVENTS: EventNames<FallbackEvents> = { fallback: true };

const KNOWN = ['on', 'clock'];

/**
 * Replaces a failed outcome with a substitute: a value returned as is, or a function of
 * the outcome and context. The caller's own abort is never replaced: the caller has gone,
 * and a value nobody receives must not cost a fallback call (nor its side effects).
 */
export class FallbackPolicy<F = unknown> extends ObservablePolicy<FallbackEvents, F> {
  readonly kind = 'fallback';
  private readonly make: FallbackFunction<F> | undefined;
  private readonly value: F | undefined;
  private readonly predicate: FallbackOptions['on'];

  constructor(
    valueOrFn: F | FallbackFunction<F>,
    options: FallbackOptions = {},
    path = 'fallback',
  ) {
    const v = new Validator(path);
    const o = v.object(options, KNOWN);
    const on = v.func<FallbackOptions['on']>('on', o.on, undefined);
    v.done();
    super(o.clock as Clock | undefined, FALLBACK_EVENTS);
    // A function is called; to fall back to a function value, return it from one: `() => fn`.
    if (typeof valueOrFn === 'function') this.make = valueOrFn as FallbackFunction<F>;
    else this.value = valueOrFn;
    this.predicate = on;
  }

  // The substitute stands in for the call's own value: the chain is typed per T, and the
  // union T | F reaches the caller through `execute` (see Policy's F, carried by pipeline()).
  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    const result = next.invoke(ctx, fn);
    // One closure per call is the price of reaching ctx from the reaction.
    if (this.predicate === undefined) {
      return result.then(undefined, (error: unknown) => this.onError(error, ctx)) as Promise<T>;
    }
    return result.then(
      (value) => this.onResult(value, ctx),
      (error: unknown) => this.onError(error, ctx),
    ) as Promise<T>;
  }

  private onResult<T>(value: T, ctx: CallContext): T | F | PromiseLike<F> {
    if (ctx.isAborted || this.predicate!(value, ctx, 'result') !== true) return value;
    return this.substitute('result', value, ctx);
  }

  private onError(error: unknown, ctx: CallContext): F | PromiseLike<F> {
    // Our own call is over (caller abort, or the deadline of the context we run in): the
    // caller already has its rejection, so nobody could receive a substitute.
    if (ctx.isAborted) throw error;
    const wanted =
      this.predicate === undefined
        ? !isAbortError(error)
        : this.predicate(error, ctx, 'error') === true;
    if (!wanted) throw error;
    return this.substitute('error', error, ctx);
  }

  private substitute(kind: FallbackKind, outcome: unknown, ctx: CallContext): F | PromiseLike<F> {
    ctx.set(FELL_BACK, true);
    if (this.events.has('fallback')) this.events.emit('fallback', { kind, outcome });
    return this.make === undefined ? this.value! : this.make(outcome, ctx);
  }
}

/**
 * Returns `valueOrFn` (or what `valueOrFn(error, ctx)` returns) instead of a failure.
 * With `on`, also replaces unwanted results; see FallbackOptions. Put it outermost, so
 * that it sees the outcome after retries and the budget.
 *
 * @example
 * ```ts
 * import { fallback, pipeline, retry, timeout } from 'bulwark';
 *
 * // Recommendations are optional: when they fail, render the page without them.
 * const recommendations = pipeline(
 *   fallback({ items: [], degraded: true }),
 *   retry({ maxAttempts: 2 }),
 *   timeout('200ms'),
 * );
 * const recs = await recommendations.execute(async (ctx) => {
 *   const res = await fetch('https://recs.internal/users/7', { signal: ctx.signal });
 *   return (await res.json()) as { items: string[]; degraded?: boolean };
 * });
 * ```
 */
export function fallback<F>(
  valueOrFn: F | FallbackFunction<F>,
  options?: FallbackOptions,
): FallbackPolicy<F> {
  return new FallbackPolicy<F>(valueOrFn, options);
}
