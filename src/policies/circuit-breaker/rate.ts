import type { TripRule } from './trip-rule.js';
import type { OutcomeWindow } from './window.js';

/** What a rate rule counts in the window: failed calls, or calls slower than the threshold. */
export type RateCounted = 'failures' | 'slow';

/**
 * Opens when the counted outcomes (failures, or slow calls) make up at least `rate` of the
 * outcomes in the window, once the window holds `minimumCalls` outcomes (so two failures
 * out of three calls at 3 a.m. do not trip it). Checked after every outcome: reaching
 * `minimumCalls` with a success can be what trips it. Slow calls count because a
 * dependency that answers in 9 s instead of 90 ms is as unusable as one that fails, but
 * never throws.
 */
export class OutcomeRate implements TripRule {
  constructor(
    readonly counted: RateCounted,
    readonly rate: number,
    readonly minimumCalls: number,
  ) {}

  record(_failed: boolean, _slow: boolean, w: OutcomeWindow): boolean {
    const n = this.counted === 'failures' ? w.failures : w.slow;
    return w.calls >= this.minimumCalls && n > 0 && n / w.calls >= this.rate;
  }

  reset(): void {
    // The counts live in the window, which the controller resets.
  }
}
