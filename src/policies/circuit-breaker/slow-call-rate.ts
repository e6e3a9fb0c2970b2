import type { TripRule } from './trip-rule.js';
import type { OutcomeWindow } from './window.js';

/**
 * Opens when calls slower than the slow-call threshold make up at least `rate` of the
 * outcomes in the window, once it holds `minimumCalls`. A dependency that answers in 9 s
 * instead of 90 ms is as unusable as one that fails, but never throws.
 */
export class SlowCallRate implements TripRule {
  constructor(
    readonly rate: number,
    readonly minimumCalls: number,
  ) {}

  record(_failed: boolean, _slow: boolean, w: OutcomeWindow): boolean {
    return w.calls >= this.minimumCalls && w.slow > 0 && w.slow / w.calls >= this.rate;
  }

  reset(): void {
    // The counts live in the window, which the controller resets.
  }
}
