/**
 * A property test you can copy: "a checkout answers within 1 s, whatever payments does".
 *
 * fast-check generates fault schedules (latency distributions, failure bursts, outages,
 * brownouts, hangs) and traffic; the invariant helper `callsWithinBudget` checks every
 * call. With a policy set that forgot its budget, fast-check finds a schedule that breaks
 * the promise and shrinks it to a small one; with the budget, the property holds.
 *
 * In your project, import from the package instead:
 *   import { dependency, type DependencyConfig } from 'bulwark';
 *   import { VirtualClock, callsWithinBudget, faultyDependency } from 'bulwark/testing';
 *   import { faultScheduleArb } from 'bulwark/testing/arbitraries';
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dependency, type DependencyConfig } from '../../src/index.js';
import {
  callsWithinBudget,
  faultyDependency,
  InvariantError,
  VirtualClock,
} from '../../src/testing/index.js';
import { faultScheduleArb } from '../../src/testing/arbitraries-entry.js';

/** What we promise our own callers: an answer (real or not) within this many ms. */
const SLO_MS = 1_000;

/** The property: every checkout through `config` settles within the SLO. */
function checkoutAnswersInTime(config: DependencyConfig) {
  return fc.asyncProperty(
    faultScheduleArb({ horizon: 10_000, maxLatency: 3_000 }),
    fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 10 }),
    async (faults, startTimes) => {
      const clock = new VirtualClock();
      const payments = faultyDependency({ ...faults, clock });
      const policies = dependency('payments', { ...config, clock });
      const slo = callsWithinBudget({ clock, tolerance: 0 });
      const calls: Promise<unknown>[] = [];
      for (const at of startTimes) {
        clock.setTimeout(() => {
          // Failures are fine here (the property is about time); only lateness counts.
          calls.push(slo.track(SLO_MS, () => policies.execute(payments.call)).catch(() => {}));
        }, at);
      }
      await clock.runAll();
      // Checked before awaiting the calls, so that a call that never ends is reported, not awaited.
      slo.assert(); // throws an InvariantError: fast-check reports it with the counterexample
      await Promise.all(calls);
    },
  );
}

// Retries, but no budget of its own: the default 10 s budget is far above our 1 s SLO.
const forgotTheBudget: DependencyConfig = {
  retry: { maxAttempts: 3, backoff: { initial: 50, max: 200, jitter: 'none' } },
};

// The same retries inside a 1 s budget, with a 300 ms attempt timeout.
const withBudget: DependencyConfig = {
  budget: SLO_MS,
  timeout: 300,
  retry: { maxAttempts: 3, backoff: { initial: 50, max: 200, jitter: 'none' } },
};

describe('checkout answers within 1 s', () => {
  it('fast-check finds a fault schedule that breaks it when the budget is missing', async () => {
    // A fixed seed makes this example deterministic. In your own tests leave `seed` out:
    // fast-check picks one per run and prints it when the property fails.
    const result = await fc.check(checkoutAnswersInTime(forgotTheBudget), {
      seed: 42,
      numRuns: 100,
    });

    expect(result.failed).toBe(true);
    expect(result.errorInstance).toBeInstanceOf(InvariantError);
    expect(String(result.errorInstance)).toMatch(/no call exceeds its budget/);
    // `result.counterexample` is the shrunk [faults, startTimes]: with seed 42, a few calls
    // whose three failing, slowish attempts plus backoff add up to more than 1 s.

    // Replaying: fast-check prints `{ seed, path }` with every failure. Pass them back
    // to run exactly the shrunk counterexample again, e.g. while you debug it:
    //   await fc.assert(checkoutAnswersInTime(forgotTheBudget), { seed: -1819918769, path: '0:1:0' });
    const replay = await fc.check(checkoutAnswersInTime(forgotTheBudget), {
      seed: result.seed,
      path: result.counterexamplePath!,
      endOnFailure: true,
    });
    expect(replay.failed).toBe(true);
    expect(replay.numRuns).toBe(1);
    expect(replay.counterexample).toEqual(result.counterexample);
  });

  it('holds for any fault schedule once the dependency has a 1 s budget', async () => {
    await fc.assert(checkoutAnswersInTime(withBudget), { numRuns: 100 });
  });
});
