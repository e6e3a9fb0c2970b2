// The circuit breaker: no call reaches the dependency while the breaker is open.
import { systemClock, type Clock } from '../../core/clock.js';
import { handledBy, type AttemptHandler } from '../../core/attempt-handler.js';
import type { Operation, Step } from '../../core/context.js';
import type { Policy } from '../../core/pipeline.js';
import { Recorder, reportingTo, type Fn, type Invariant } from './invariant.js';

/** A circuit breaker as this helper needs it: its `state`, and (to watch hand-offs) its `run`. */
export interface BreakerLike {
  /** The breaker's state now: `open` and `isolated` count as open. */
  readonly state: string;
  /** The breaker's step in a pipeline, wrapped to watch hand-offs (a bulwark breaker has one). */
  run?: Policy['run'];
}

/** Options of `breakerNeverCallsWhileOpen()`. */
export interface BreakerCheckOptions {
  /**
   * Where the state is checked. `'handoff'` (the default when the breaker has a `run`):
   * each time the breaker passes a call inward. `'fn'`: each time fn starts — exact only
   * when nothing between the breaker and fn delays or repeats calls (no bulkhead queue,
   * no hedge), because those may start fn later for a call the breaker let through while
   * it was still closed.
   */
  at?: 'handoff' | 'fn';
  /** Used to time-stamp violations (default: the system clock). */
  clock?: Clock;
}

/** What `breakerNeverCallsWhileOpen()` returns: the wrapped fn, counts, and `assert()`. */
export interface BreakerCheck<C, R> extends Invariant {
  /** fn, wrapped: calls are counted (and checked, with `at: 'fn'`). */
  readonly fn: (ctx: C) => Promise<R>;
  /** Calls that reached fn. */
  readonly calls: number;
  /** Calls the breaker passed inward (handoff mode). */
  readonly handoffs: number;
  /** Stops watching the breaker (restores its own `run`). */
  dispose(): void;
}

const OPEN_STATES: ReadonlySet<string> = new Set(['open', 'isolated']);

/**
 * "The breaker never calls fn while open": records a violation each time a call gets
 * past the breaker while its state is `open` or `isolated`. By default it watches the
 * breaker itself — it wraps this breaker object's `run` (restored by `dispose()`) and
 * checks the state when a call is passed inward — so a call queued in a bulkhead or a
 * hedge started later for a call admitted while closed is (rightly) not a violation.
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { VirtualClock, breakerNeverCallsWhileOpen, faultyDependency } from 'bulwark/testing';
 *
 * const clock = new VirtualClock();
 * const payments = faultyDependency({ clock, latency: 20, outages: [{ from: 0, to: '1m' }] });
 * const dep = dependency('payments', { clock, circuitBreaker: { consecutiveFailures: 3 } });
 * const breakerCheck = breakerNeverCallsWhileOpen(dep.breaker!, payments.call, { clock });
 * for (let i = 0; i < 50; i++) {
 *   dep.execute(breakerCheck.fn).catch(() => {});
 *   await clock.advance(1000);
 * }
 * breakerCheck.assert();
 * breakerCheck.dispose();
 * ```
 */
export function breakerNeverCallsWhileOpen<C, R>(
  breaker: BreakerLike,
  fn: Fn<C, R>,
  options: BreakerCheckOptions = {},
): BreakerCheck<C, R> {
  const clock = options.clock ?? systemClock;
  const mode = options.at ?? (typeof breaker.run === 'function' ? 'handoff' : 'fn');
  const recorder = new Recorder('the breaker never calls fn while open');
  let calls = 0;
  let handoffs = 0;

  const check = (what: string): void => {
    const state = breaker.state;
    if (OPEN_STATES.has(state))
      recorder.violate(`${what} while the breaker was ${state} at t=${clock.now()}`);
  };

  let restore: (() => void) | undefined;
  if (mode === 'handoff') {
    const own = Object.prototype.hasOwnProperty.call(breaker, 'run');
    const original = breaker.run;
    if (typeof original !== 'function') {
      throw new TypeError("breakerNeverCallsWhileOpen: at: 'handoff' needs a breaker with run()");
    }
    const bound = original.bind(breaker);
    // Instance-level wrapper: pipelines call `policy.run(...)`, which finds this first.
    const watched: Policy['run'] = (ctx, f, next) => {
      const checked: Step = {
        invoke: (c, g) => {
          handoffs++;
          check(`call passed on (handoff ${handoffs})`);
          return next.invoke(c, g);
        },
      };
      return bound(ctx, f, checked);
    };
    Object.defineProperty(breaker, 'run', { value: watched, configurable: true, writable: true });
    // A step that just read the clock calls `runAt` instead (see Step.invokeAt), and one
    // whose attempts hand their outcomes over calls `runHandled`: route both through the
    // watched `run` too, so no hand-off goes unseen.
    type Ctx = Parameters<Policy['run']>[0];
    const withReading = 'runAt' in breaker;
    const handing = 'runHandled' in breaker;
    if (withReading) {
      Object.defineProperty(breaker, 'runAt', {
        value: (ctx: Ctx, f: Operation<unknown>, next: Step) => watched(ctx, f, next),
        configurable: true,
        writable: true,
      });
    }
    if (handing) {
      Object.defineProperty(breaker, 'runHandled', {
        value: (
          ctx: Ctx,
          f: Operation<unknown>,
          next: Step,
          _now: unknown,
          _counting: unknown,
          outer: AttemptHandler,
        ) => handledBy(watched(ctx, f, next), ctx, f, outer),
        configurable: true,
        writable: true,
      });
    }
    restore = () => {
      if (own)
        Object.defineProperty(breaker, 'run', {
          value: original,
          configurable: true,
          writable: true,
        });
      else delete (breaker as { run?: unknown }).run;
      if (withReading) delete (breaker as { runAt?: unknown }).runAt;
      if (handing) delete (breaker as { runHandled?: unknown }).runHandled;
    };
  }

  const wrapped = (ctx: C): Promise<R> => {
    calls++;
    if (mode === 'fn') check(`fn called (call ${calls})`);
    try {
      return Promise.resolve(fn(ctx));
    } catch (error) {
      return Promise.reject(error);
    }
  };

  return reportingTo(
    {
      fn: wrapped,
      get calls() {
        return calls;
      },
      get handoffs() {
        return handoffs;
      },
      dispose() {
        restore?.();
        restore = undefined;
      },
    },
    recorder,
  );
}
