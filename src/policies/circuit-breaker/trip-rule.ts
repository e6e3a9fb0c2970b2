import type { OutcomeWindow } from './window.js';

/**
 * Decides when a closed breaker opens. The controller feeds it every counted outcome,
 * after recording it in the breaker's window (if it has one), which it hands over too:
 * rules hold no reference of their own. A new way to trip is a new rule, not a change
 * to the state machine.
 */
export interface TripRule {
  /**
   * Takes one counted outcome; true means "open the breaker now". `now` is the outcome's
   * time when the breaker read the clock for it (always, with a timed window).
   */
  record(failed: boolean, slow: boolean, window: OutcomeWindow | undefined, now?: number): boolean;
  /**
   * Forgets what it has seen (the breaker closed again). `recoveredAt` is given when it
   * closed because its trials succeeded: the dependency had tripped it and is back.
   */
  reset(recoveredAt?: number): void;
  /** Failures in a row, for rules that count them (stats). */
  consecutiveFailures?(): number;
}

/** Opens when any of its rules says so; every rule still sees every outcome. */
export class AnyOfRules implements TripRule {
  constructor(readonly rules: readonly TripRule[]) {}

  record(failed: boolean, slow: boolean, window: OutcomeWindow | undefined, now?: number): boolean {
    let trip = false;
    for (const rule of this.rules) if (rule.record(failed, slow, window, now)) trip = true;
    return trip;
  }

  reset(recoveredAt?: number): void {
    for (const rule of this.rules) rule.reset(recoveredAt);
  }

  consecutiveFailures(): number {
    for (const rule of this.rules)
      if (rule.consecutiveFailures !== undefined) return rule.consecutiveFailures();
    return 0;
  }
}
