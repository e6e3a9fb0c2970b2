import type { Validator } from '../../../core/validate.js';
import { AdaptiveLimiter, type LimitSample } from './limiter.js';

/** Options of the `aimd` algorithm: `adaptive({ algorithm: 'aimd', … })`. */
export interface AimdOptions {
  /** Added to the limit over one limit's worth of successful samples, > 0 (default 1). */
  increase?: number;
  /** The limit is multiplied by this on a drop, in [0.1, 1) (default 0.9). */
  backoffRatio?: number;
  /** A call slower than this counts as a drop (ms or '250ms'; default Infinity: only real drops). */
  latencyThreshold?: number | string;
}

export const AIMD_KEYS = ['increase', 'backoffRatio', 'latencyThreshold'] as const;

/**
 * AIMD, as in TCP congestion control: each successful sample adds `increase / limit`
 * (about `increase` per round trip of a full window) while at least half the limit is in
 * use; a drop — a timeout, a downstream shed, or a call slower than `latencyThreshold` —
 * multiplies the limit by `backoffRatio`. Only one cut is made per round trip: drops of
 * calls that started before the last cut were caused by the old limit, and cutting again
 * for each of them would collapse the limit to `min` after one burst.
 */
export class AimdLimiter extends AdaptiveLimiter {
  readonly algorithm = 'aimd';
  /** Added to the limit over one limit's worth of successful samples. */
  readonly increase: number;
  /** The limit is multiplied by this on a drop. */
  readonly backoffRatio: number;
  /** ms above which a call counts as a drop (Infinity: only real drops). */
  readonly latencyThreshold: number;
  private lastCut = -Infinity;

  constructor(min: number, max: number, initial: number, o: Record<string, unknown>, v: Validator) {
    super(min, max, initial);
    this.increase = v.number('increase', o.increase, 1, Number.MIN_VALUE, Infinity, 'a number > 0');
    this.backoffRatio = v.number(
      'backoffRatio',
      o.backoffRatio,
      0.9,
      0.1,
      1 - Number.EPSILON,
      'a number in [0.1, 1)',
    );
    this.latencyThreshold = v.duration('latencyThreshold', o.latencyThreshold, Infinity, {
      min: 0,
      allowInfinity: true,
    });
  }

  onSample(s: LimitSample): void {
    if (s.dropped || s.rtt > this.latencyThreshold) {
      if (s.now - s.rtt <= this.lastCut) return;
      this.lastCut = s.now;
      this.set(this.estimate * this.backoffRatio);
      return;
    }
    // "At least half in use" is judged against the integer limit callers see: against the
    // fractional estimate, one increment (20 → 20.05) would turn 10 of 20 into "not half"
    // and the limit would never grow at exactly half use (Netflix: inflight * 2 >= limit).
    if (s.inFlight * 2 < this.limit) return;
    this.set(this.estimate + this.increase / this.estimate);
  }
}
