import type { Validator } from '../../../core/validate.js';
import { AdaptiveLimiter, type LimitSample } from './limiter.js';

/** Options of the `vegas` algorithm: `adaptive({ algorithm: 'vegas', … })`. */
export interface VegasOptions {
  /** Grow while the estimated queue is at most `alpha × lg(limit)` calls (default 3). */
  alpha?: number;
  /** Shrink once the estimated queue reaches `beta × lg(limit)` calls, > alpha (default 6). */
  beta?: number;
  /** Fraction of each step taken, in (0, 1] (default 1). */
  smoothing?: number;
  /**
   * The no-load RTT is re-measured after `probeMultiplier × limit` samples (integer ≥ 1,
   * default 30), so a baseline from a quieter past does not make normal latency look like
   * a queue forever.
   */
  probeMultiplier?: number;
}

export const VEGAS_KEYS = ['alpha', 'beta', 'smoothing', 'probeMultiplier'] as const;

/** log10 of the limit, but at least 1, so small limits still move by whole calls. */
function lg(limit: number): number {
  const l = Math.log10(limit);
  return l > 1 ? l : 1;
}

/**
 * Vegas (after TCP Vegas): the lowest RTT seen is the no-load RTT; a call that took
 * longer spent the difference queued, so `limit × (1 − noLoad / rtt)` estimates how many
 * calls are waiting rather than being served. Per round trip: few queued, grow by
 * lg(limit) (by beta × lg(limit) when the queue is empty); many queued, shrink by
 * lg(limit). A drop shrinks by lg(limit) at once. Steps grow with log10 of the limit, so
 * large limits converge in a few round trips and small ones stay steady.
 */
export class VegasLimiter extends AdaptiveLimiter {
  readonly algorithm = 'vegas';
  /** Grows while the estimated queue is at most `alpha × lg(limit)` calls. */
  readonly alpha: number;
  /** Shrinks once the estimated queue reaches `beta × lg(limit)` calls. */
  readonly beta: number;
  /** Fraction of each step taken, in (0, 1]. */
  readonly smoothing: number;
  /** The no-load RTT is re-measured after `probeMultiplier × limit` samples. */
  readonly probeMultiplier: number;
  private noLoadRtt = 0;
  private sinceProbe = 0;

  constructor(min: number, max: number, initial: number, o: Record<string, unknown>, v: Validator) {
    super(min, max, initial);
    this.alpha = v.number('alpha', o.alpha, 3, 0);
    this.beta = v.number('beta', o.beta, 6, 0);
    if (this.beta <= this.alpha)
      v.problem('beta', `a number > alpha (${this.alpha})`, o.beta ?? this.beta);
    this.smoothing = v.number(
      'smoothing',
      o.smoothing,
      1,
      Number.MIN_VALUE,
      1,
      'a number in (0, 1]',
    );
    this.probeMultiplier = v.int('probeMultiplier', o.probeMultiplier, 30, 1);
  }

  /** The RTT taken as "no queue", in ms (0 before the first sample). */
  get baseRtt(): number {
    return this.noLoadRtt;
  }

  onSample(s: LimitSample): void {
    const current = this.estimate;
    const step = lg(current);
    if (s.dropped) {
      this.set(current - step);
      return;
    }
    const rtt = s.rtt;
    if (!(rtt > 0) || rtt === Infinity) return;
    if (++this.sinceProbe >= this.probeMultiplier * current) {
      this.sinceProbe = 0;
      this.noLoadRtt = rtt;
    } else if (this.noLoadRtt === 0 || rtt < this.noLoadRtt) {
      this.noLoadRtt = rtt;
    }
    const queue = Math.ceil(current * (1 - this.noLoadRtt / rtt));
    let delta: number;
    if (queue >= this.beta * step) delta = -step;
    else if (s.inFlight * 2 < current)
      return; // app-limited: no evidence for a higher limit
    else if (queue <= step) delta = this.beta * step;
    else if (queue <= this.alpha * step) delta = step;
    else return;
    // About a limit's worth of samples arrive per round trip: spreading the step over them
    // moves the limit once per round trip, as TCP Vegas does. Stepping on every sample
    // overshoots, because the samples still in flight were all taken under the old limit.
    this.set(current + (this.smoothing * delta) / current);
  }
}
