import type { TripRule } from './trip-rule.js';
import type { OutcomeWindow } from './window.js';

/**
 * Opens when failures make up at least `rate` of the outcomes in the window, once the
 * window holds `minimumCalls` outcomes (so two failures out of three calls at 3 a.m. do
 * not trip it). Checked after every outcome: reaching `minimumCalls` with a success can
 * be what trips it.
 */
export class FailureRate implements TripRule {
  constructor(
    readonly rate: number,
    readonly minimumCalls: number,
  ) {}

  record(_failed: boolean, _slow: boolean, w: OutcomeWindow): boolean {
    return w.calls >= this.minimumCalls && w.failures > 0 && w.failures / w.calls >= this.rate;
  }

  reset(): void {
    // The counts live in the window, which the controller resets.
  }
}
