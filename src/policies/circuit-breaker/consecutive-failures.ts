import type { TripRule } from './trip-rule.js';

/** Opens after `threshold` failures in a row; any success starts the count again. */
export class ConsecutiveFailures implements TripRule {
  /** Failures since the last success. */
  count = 0;

  constructor(readonly threshold: number) {}

  record(failed: boolean): boolean {
    if (!failed) {
      this.count = 0;
      return false;
    }
    return ++this.count >= this.threshold;
  }

  reset(): void {
    this.count = 0;
  }

  consecutiveFailures(): number {
    return this.count;
  }
}
