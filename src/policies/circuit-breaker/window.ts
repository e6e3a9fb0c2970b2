/**
 * A rolling record of recent call outcomes, read by the rate trip rules. Implementations
 * are fixed-size ring buffers: recording is O(1), nothing is sorted, no timer runs.
 */
export interface OutcomeWindow {
  /** Whether `record` and `roll` need the current time (false: `now` is ignored). */
  readonly timed: boolean;
  /** Outcomes currently in the window. */
  readonly calls: number;
  readonly failures: number;
  /** Slow calls in the window (always 0 when the window was built without slow-call tracking). */
  readonly slow: number;
  /** Adds one counted outcome at time `now`. */
  record(now: number, failed: boolean, slow: boolean): void;
  /** Drops what has aged out by `now` without adding anything (for stats). */
  roll(now: number): void;
  /** Forgets every outcome (the breaker closed again). */
  reset(): void;
}
