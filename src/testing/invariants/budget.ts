// Time budgets: every call ends within its budget (plus a tolerance).
import { systemClock, type Clock } from '../../core/clock.js';

import { InvariantError, Recorder, reportingTo, type Invariant } from './invariant.js';

/** Options of `callsWithinBudget()`. */
export interface BudgetCheckOptions {
  /** ms a call may run past its budget before it counts as a violation (default 0). */
  tolerance?: number;
  /** The clock the budgets run on (default: the system clock). Use the policies' clock. */
  clock?: Clock;
}

/** What `callsWithinBudget()` returns: `track()` for each call, and `assert()`. */
export interface BudgetCheck extends Invariant {
  /**
   * Starts a call and watches it against `budgetMs`. Returns a promise with the call's
   * outcome (unhandled if you leave it unhandled, as the original would be).
   */
  track<T>(budgetMs: number, start: () => PromiseLike<T>): Promise<T>;
  /** Calls tracked, settled or not. */
  readonly calls: number;
  /** Longest time a settled call ran past its budget, in ms (negative: all within it). */
  readonly worstOverrun: number;
}

/**
 * "No call exceeds its budget + tolerance": times each tracked call on the clock from its
 * start to its settlement. `assert()` also flags calls still running past their budget.
 * On a VirtualClock a tolerance of 0 is exact; on real time allow for timer lateness.
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { VirtualClock, callsWithinBudget, faultyDependency } from 'bulwark/testing';
 *
 * const clock = new VirtualClock();
 * const slow = faultyDependency({ clock, latency: { p50: 200, p99: 2_000 }, hangs: 0.1 });
 * const dep = dependency('slow', { clock, retry: {} });
 * const budgets = callsWithinBudget({ clock, tolerance: 0 });
 * const result = budgets.track(500, () => dep.execute(slow.call, { budget: 500 })).catch(() => {});
 * await clock.advance(1000);
 * await result;
 * budgets.assert();
 * ```
 */
export function callsWithinBudget(options: BudgetCheckOptions | number = {}): BudgetCheck {
  const o = typeof options === 'number' ? { tolerance: options } : options;
  const tolerance = o.tolerance ?? 0;
  const clock = o.clock ?? systemClock;
  const recorder = new Recorder(`no call exceeds its budget + ${tolerance} ms`);
  const running = new Set<{ n: number; start: number; budget: number }>();
  let calls = 0;
  let worstOverrun = -Infinity;

  function settle(entry: { n: number; start: number; budget: number }): void {
    running.delete(entry);
    const took = clock.now() - entry.start;
    const overrun = took - entry.budget;
    if (overrun > worstOverrun) worstOverrun = overrun;
    if (overrun > tolerance) {
      recorder.violate(
        `call ${entry.n} took ${took} ms, budget ${entry.budget} ms (started t=${entry.start})`,
      );
    }
  }

  function track<T>(budgetMs: number, start: () => PromiseLike<T>): Promise<T> {
    const entry = { n: ++calls, start: clock.now(), budget: budgetMs };
    running.add(entry);
    let promise: PromiseLike<T>;
    try {
      promise = start();
    } catch (error) {
      settle(entry);
      return Promise.reject(error);
    }
    return Promise.resolve(promise).then(
      (value) => {
        settle(entry);
        return value;
      },
      (error: unknown) => {
        settle(entry);
        throw error;
      },
    );
  }

  return reportingTo(
    {
      track,
      get calls() {
        return calls;
      },
      get worstOverrun() {
        return worstOverrun;
      },
      assert() {
        const now = clock.now();
        const late = [...running].filter((e) => now - e.start > e.budget + tolerance);
        if (late.length > 0) {
          throw new InvariantError(
            recorder.invariant,
            [
              ...recorder.violations,
              ...late.map(
                (e) => `call ${e.n} still running after ${now - e.start} ms, budget ${e.budget} ms`,
              ),
            ],
            recorder.violationCount + late.length,
          );
        }
        recorder.assert();
      },
    },
    recorder,
  );
}
