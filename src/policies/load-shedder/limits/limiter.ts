import type { Validator } from '../../../core/validate.js';

/** What one finished call tells a concurrency limiter. */
export interface LimitSample {
  /** How long the call held its slot, in ms (queue wait excluded). */
  rtt: number;
  /** Calls in flight when this one was admitted, itself included. */
  inFlight: number;
  /**
   * The call was dropped: it timed out, was shed downstream, or finished after its
   * deadline. Limiters read this as the strongest overload signal.
   */
  dropped: boolean;
  /** Clock reading when the call finished, in ms. */
  now: number;
}

/**
 * A concurrency limit that may move with what calls report. One limiter belongs to one
 * load shedder: the samples it learns from are that shedder's calls.
 */
export interface Limiter {
  /** `fixed`, `gradient`, `aimd`, `vegas`, or a name of your own. */
  readonly algorithm: string;
  /** Current limit: an integer in [min, max] (or Infinity for an unbounded fixed limit). */
  readonly limit: number;
  /** The lowest the limit can go. */
  readonly min: number;
  /** The highest the limit can go. */
  readonly max: number;
  /**
   * False when samples cannot change the limit: the shedder then skips timing calls
   * (no clock reads on the success path).
   */
  readonly adaptive: boolean;
  /** Learns from one finished call; called by the load shedder that owns this limiter. */
  onSample(sample: LimitSample): void;
}

/** The bounds every adaptive algorithm keeps its limit within. */
export interface AdaptiveBounds {
  /** Lowest limit (integer ≥ 1; default 1). */
  min?: number;
  /** Highest limit (integer ≥ min; default 1000). */
  max?: number;
  /** Limit before any sample (integer in [min, max]; default 20, or min/max when outside). */
  initial?: number;
}

export const BOUND_KEYS = ['min', 'max', 'initial'] as const;

/** Reads and cross-checks min/max/initial, reporting every problem to `v`. */
export function readBounds(
  v: Validator,
  o: Record<string, unknown>,
): { min: number; max: number; initial: number } {
  const min = v.int('min', o.min, 1, 1);
  const max = v.int('max', o.max, Math.max(1000, min), 1);
  if (max < min) v.problem('max', `an integer ≥ min (${min})`, max);
  const defInitial = Math.min(Math.max(20, min), Math.max(min, max));
  const initial = v.int('initial', o.initial, defInitial, 1);
  if (o.initial !== undefined && (initial < min || initial > max)) {
    v.problem('initial', `an integer in [min, max] = [${min}, ${max}]`, initial);
  }
  return { min, max, initial };
}

/**
 * Shared state of the adaptive limiters: a real-valued estimate kept inside [min, max],
 * exposed as an integer limit. Every update goes through `set`, so no algorithm can
 * leave the bounds whatever its arithmetic does (NaN included).
 */
export abstract class AdaptiveLimiter implements Limiter {
  abstract readonly algorithm: string;
  readonly adaptive = true;
  readonly min: number;
  readonly max: number;
  /** The real-valued limit the algorithm steers; `limit` is its floor. */
  protected estimate: number;
  /** The current limit: the estimate rounded down, always within [min, max]. */
  limit: number;

  constructor(min: number, max: number, initial: number) {
    this.min = min;
    this.max = max;
    this.estimate = initial;
    this.limit = initial;
  }

  /** Moves the estimate, clamped to [min, max]; the only way the limit changes. */
  protected set(estimate: number): void {
    const e = estimate > this.max ? this.max : estimate >= this.min ? estimate : this.min;
    this.estimate = e;
    this.limit = Math.floor(e);
  }

  abstract onSample(sample: LimitSample): void;
}
