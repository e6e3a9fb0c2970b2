// Settlement: every call settles exactly once.

import { InvariantError, Recorder, reportingTo, type Invariant } from './invariant.js';

/** What `settlesExactlyOnce()` returns: `track()` for each call, counts, and `assert()`. */
export interface SettleCheck extends Invariant {
  /**
   * Watches a promise (or any thenable) and returns a native promise with its first
   * outcome. A thenable that calls back twice, or both ways, is a violation.
   */
  track<T>(promise: PromiseLike<T>, label?: string): Promise<T>;
  /** Calls tracked. */
  readonly tracked: number;
  /** Tracked calls that settled (once, or more). */
  readonly settled: number;
  /** Tracked and not settled yet. */
  readonly pending: number;
}

/**
 * "Every call settles exactly once": `assert()` fails for any tracked call that has not
 * settled yet (a call that hangs forever) and for any that settled more than once (a
 * hand-written thenable or callback bridge that resolves and then rejects). Call
 * `assert()` once the run is over (e.g. after `await clock.runAll()`).
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { VirtualClock, faultyDependency, settlesExactlyOnce } from 'bulwark/testing';
 *
 * const clock = new VirtualClock();
 * const flaky = faultyDependency({ clock, latency: 30, failureRate: 0.3, hangs: 0.05 });
 * const dep = dependency('flaky', { clock, budget: '1s', retry: {} });
 * const settles = settlesExactlyOnce();
 * const calls = Array.from({ length: 20 }, (_, i) =>
 *   settles.track(dep.execute(flaky.call), `call ${i}`).catch(() => 'failed'),
 * );
 * await clock.runAll();
 * settles.assert(); // before awaiting the calls: one that never settles would wait forever
 * await Promise.all(calls);
 * ```
 */
export function settlesExactlyOnce(): SettleCheck {
  const recorder = new Recorder('every call settles exactly once');
  const open = new Map<number, string>();
  let tracked = 0;
  let settled = 0;

  function track<T>(promise: PromiseLike<T>, label?: string): Promise<T> {
    const n = ++tracked;
    const name = label ?? `call ${n}`;
    open.set(n, name);
    let outcomes = 0;
    let first: string | undefined;
    return new Promise<T>((resolve, reject) => {
      const seen = (how: string): boolean => {
        outcomes++;
        if (outcomes === 1) {
          first = how;
          settled++;
          open.delete(n);
          return true;
        }
        recorder.violate(`${name} settled ${outcomes} times (${first}, then ${how})`);
        return false;
      };
      try {
        promise.then(
          (value) => {
            if (seen('fulfilled')) resolve(value);
          },
          (error: unknown) => {
            if (seen('rejected')) reject(error);
          },
        );
      } catch (error) {
        if (seen('threw in then()')) reject(error);
      }
    });
  }

  return reportingTo(
    {
      track,
      get tracked() {
        return tracked;
      },
      get settled() {
        return settled;
      },
      get pending() {
        return open.size;
      },
      assert() {
        if (open.size === 0) return recorder.assert();
        const never = [...open.values()].map((name) => `${name} never settled`);
        throw new InvariantError(
          recorder.invariant,
          [...recorder.violations, ...never],
          recorder.violationCount + never.length,
        );
      },
    },
    recorder,
  );
}
