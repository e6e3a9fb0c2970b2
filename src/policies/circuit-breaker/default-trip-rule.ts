import type { TripRule } from './trip-rule.js';
import type { OutcomeWindow } from './window.js';

/** The window the default rule reads: the last 10 s, in 1 s slices. */
export const DEFAULT_RULE_WINDOW = { ms: 10_000, buckets: 10 } as const;

/**
 * The numbers of the default rule. Why these (30 % random errors must not trip it; an
 * outage must, within a second at 100 calls/s and within a few calls at low traffic):
 * - 10 failures in a row happen by chance at a 30 % error rate with probability 0.3¹⁰ ≈ 6·10⁻⁶
 *   per failure run: about once in half an hour at 140 attempts/s, where 5 in a row
 *   (0.3⁵ ≈ 0.24 %) trips every few seconds. A dead dependency gives 10 in a row in
 *   0.1 s at 100 calls/s.
 * - While traffic is low (fewer than 100 outcomes in the 10 s window, under 10 calls/s),
 *   10 in a row would take seconds, so 5 in a row trips it; chance runs of 5 are rare at
 *   that rate (about one a minute at 10 calls/s with 30 % errors).
 * - Half of the last 10 s failing (at least 20 calls) catches faults that fail most but
 *   not all calls (60 % errors rarely give 10 in a row).
 * - For 10 s after the breaker closes because its trials succeeded, 3 failures in a row
 *   reopen it: a dependency that has just come back and fails three calls running has not
 *   recovered (a fault that comes and goes every few seconds), and telling that apart from
 *   chance is worth less than the 7 calls more it would cost each time.
 */
export const DEFAULT_RULE = {
  failureRate: 0.5,
  minimumCalls: 20,
  consecutive: 10,
  lowTrafficConsecutive: 5,
  lowTrafficCalls: 100,
  probationConsecutive: 3,
  probationMs: 10_000,
} as const;

/**
 * The trip rule a breaker uses when none is given: failures in a row, with a shorter run
 * while traffic is low or just after a recovery, or a failure rate over the window. It
 * reads the breaker's time window (DEFAULT_RULE_WINDOW), which the controller fills, with
 * the clock read, before each call to `record`.
 */
export class DefaultTripRule implements TripRule {
  /** Failures since the last success. */
  private count = 0;
  /** Until when a recovered dependency is on probation (shorter run to reopen). */
  private probationUntil = -Infinity;

  record(failed: boolean, _slow: boolean, w: OutcomeWindow | undefined, now?: number): boolean {
    if (!failed) {
      this.count = 0;
      return false;
    }
    const run = ++this.count;
    const calls = w?.calls ?? 0;
    const needed =
      now !== undefined && now < this.probationUntil
        ? DEFAULT_RULE.probationConsecutive
        : calls < DEFAULT_RULE.lowTrafficCalls
          ? DEFAULT_RULE.lowTrafficConsecutive
          : DEFAULT_RULE.consecutive;
    if (run >= needed) return true;
    return (
      w !== undefined &&
      calls >= DEFAULT_RULE.minimumCalls &&
      w.failures / calls >= DEFAULT_RULE.failureRate
    );
  }

  reset(recoveredAt?: number): void {
    this.count = 0;
    this.probationUntil =
      recoveredAt === undefined ? -Infinity : recoveredAt + DEFAULT_RULE.probationMs;
  }

  consecutiveFailures(): number {
    return this.count;
  }
}
