import type { Validator } from '../../../core/validate.js';
import { AdaptiveLimiter, type LimitSample } from './limiter.js';

/** Options of the `gradient` algorithm: `adaptive({ algorithm: 'gradient', … })`. */
export interface GradientOptions {
  /** Weight of each new target in the limit, in (0, 1] (default 0.2). */
  smoothing?: number;
  /** How far the short RTT may exceed the long RTT before the limit shrinks, ≥ 1 (default 1.5). */
  tolerance?: number;
  /**
   * Time constant of the long-term RTT average (ms or '1m'; default 60 s). It is measured
   * in time, not samples, so that it means the same at 100 and at 10 000 calls per second
   * (below 100 samples per window, one sample moves the average by at most 1 %).
   */
  longWindow?: number | string;
  /**
   * Calls allowed to queue on top of the RTT-proportional limit: a number ≥ 0 or a
   * function of the current limit (default 4). It is what lets the limit probe upward.
   */
  queueSize?: number | ((limit: number) => number);
}

export const GRADIENT_KEYS = ['smoothing', 'tolerance', 'longWindow', 'queueSize'] as const;

/** Samples averaged plainly before the long RTT switches to an exponential average. */
const WARMUP = 10;

/**
 * Gradient (after Netflix's Gradient2): compares a short-term RTT (the latest sample)
 * with a long-term, time-weighted average. While they match, the limit creeps up by the
 * queue allowance; when recent calls are slower than the long view by more than
 * `tolerance`, the limit is scaled by long/short (never below half per step). A drop
 * counts as the worst gradient (½), without the queue allowance. The long average is
 * pulled down when it is far above recent RTTs, so it recovers after a long overload
 * instead of excusing slowness forever.
 */
export class GradientLimiter extends AdaptiveLimiter {
  readonly algorithm = 'gradient';
  /** Weight of each new target in the limit, in (0, 1]. */
  readonly smoothing: number;
  /** How far the short RTT may exceed the long RTT before the limit shrinks. */
  readonly tolerance: number;
  /** Time constant of the long-term RTT average, in ms. */
  readonly longWindow: number;
  private readonly queueSize: (limit: number) => number;
  private longRtt = 0;
  private samples = 0;
  private lastAt = -Infinity;

  constructor(min: number, max: number, initial: number, o: Record<string, unknown>, v: Validator) {
    super(min, max, initial);
    this.smoothing = v.number(
      'smoothing',
      o.smoothing,
      0.2,
      Number.MIN_VALUE,
      1,
      'a number in (0, 1]',
    );
    this.tolerance = v.number('tolerance', o.tolerance, 1.5, 1);
    this.longWindow = v.duration('longWindow', o.longWindow, 60_000, { min: 1 });
    const q = o.queueSize;
    if (q === undefined) this.queueSize = () => 4;
    else if (typeof q === 'function') this.queueSize = q as (limit: number) => number;
    else {
      const n = v.number('queueSize', q, 4, 0, Infinity, 'a number ≥ 0 or a function of the limit');
      this.queueSize = () => n;
    }
  }

  /** The long-term RTT average, in ms (0 before the first sample). */
  get longTermRtt(): number {
    return this.longRtt;
  }

  onSample(s: LimitSample): void {
    let gradient: number;
    if (s.dropped) {
      // A dropped call's RTT is cut short by its timeout: it says nothing reliable about latency.
      gradient = 0.5;
    } else {
      const rtt = s.rtt;
      if (!(rtt > 0) || rtt === Infinity) return;
      this.samples++;
      if (this.samples <= WARMUP) this.longRtt += (rtt - this.longRtt) / this.samples;
      else {
        // Time-weighted: each sample stands for the time since the previous one, but for at
        // most 1 % of the window, so one slow call after a quiet spell cannot rewrite history.
        const dt = Math.min(s.now - this.lastAt, this.longWindow / 100);
        if (dt > 0) this.longRtt += (rtt - this.longRtt) * (1 - Math.exp(-dt / this.longWindow));
      }
      if (s.now > this.lastAt) this.lastAt = s.now;
      if (this.longRtt > 2 * rtt) this.longRtt *= 0.95;
      const g = (this.tolerance * this.longRtt) / rtt;
      gradient = g < 0.5 ? 0.5 : g > 1 ? 1 : g;
    }
    const current = this.estimate;
    // The queue allowance probes upward; after a drop there is nothing to probe for.
    const allowance = s.dropped ? 0 : Math.max(0, this.queueSize(current) || 0);
    const target = current * gradient + allowance;
    const next = current * (1 - this.smoothing) + target * this.smoothing;
    // An app-limited caller (less than half the limit in use) proves nothing about a higher limit.
    if (next > current && s.inFlight * 2 < current) return;
    this.set(next);
  }
}
