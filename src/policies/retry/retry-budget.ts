import { Validator } from '../../core/validate.js';

/** Options of `retryBudget()`; the defaults are Finagle's. */
export interface RetryBudgetOptions {
  /** Retries may add at most this share of recent requests (default 0.2). */
  ratio?: number;
  /** Retries always allowed per second regardless of traffic (default 10). */
  minPerSecond?: number;
  /** How far back "recent" reaches, in ms (default 10 000). */
  window?: number | string;
}

const BUCKETS = 10;

/**
 * Finagle/Envoy-style retry budget, shared by every call to one dependency: within the
 * window, retries ≤ ratio × requests + minPerSecond × window seconds. When a dependency
 * is down, this turns "every client retries 3×" into "the fleet adds ≤ 20 % load".
 * Counts live in a ring of time buckets: O(1) to record, O(buckets) to check, no timers.
 * Made by `retryBudget()`, or by `retry()` from its `retryBudget` options.
 */
export class RetryBudget {
  /** Share of recent requests that retries may add (0..1). */
  readonly ratio: number;
  /** Retries allowed per second whatever the traffic, so a quiet service can still retry. */
  readonly minPerSecond: number;
  /** How far back "recent" reaches, in ms. */
  readonly window: number;
  private readonly bucketMs: number;
  private readonly epochs = new Float64Array(BUCKETS).fill(-1);
  private readonly requests = new Float64Array(BUCKETS);
  private readonly retries = new Float64Array(BUCKETS);
  /** Retries refused so far (for stats and tests). */
  exhausted = 0;

  constructor(options: RetryBudgetOptions = {}, path = 'retryBudget') {
    const v = new Validator(path);
    const o = v.object(options, ['ratio', 'minPerSecond', 'window']);
    this.ratio = v.number('ratio', o.ratio, 0.2, 0, 1);
    this.minPerSecond = v.number('minPerSecond', o.minPerSecond, 10, 0);
    this.window = v.duration('window', o.window, 10_000, { min: 1 });
    v.done();
    this.bucketMs = this.window / BUCKETS;
  }

  private slot(now: number): number {
    const epoch = Math.floor(now / this.bucketMs);
    const i = epoch % BUCKETS;
    if (this.epochs[i] !== epoch) {
      this.epochs[i] = epoch;
      this.requests[i] = 0;
      this.retries[i] = 0;
    }
    return i;
  }

  /** Counts one logical request (a first attempt). */
  recordRequest(now: number): void {
    this.requests[this.slot(now)]! += 1;
  }

  /** Takes one retry from the budget if there is one left. */
  tryAcquire(now: number): boolean {
    const current = this.slot(now);
    const oldest = this.epochs[current]! - BUCKETS + 1;
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (this.epochs[i]! >= oldest) {
        requests += this.requests[i]!;
        retries += this.retries[i]!;
      }
    }
    const allowed = this.ratio * requests + (this.minPerSecond * this.window) / 1000;
    if (retries + 1 > allowed) {
      this.exhausted++;
      return false;
    }
    this.retries[current]! += 1;
    return true;
  }
}

/**
 * A retry budget to share across calls: `retry({ retryBudget: retryBudget({ ratio: 0.1 }) })`.
 * Share one per dependency, so that every caller of it draws on the same allowance.
 *
 * @example
 * ```ts
 * import { retry, retryBudget } from 'bulwark';
 *
 * // Two endpoints of one service: together, their retries add at most 10 % to its load
 * // during an outage (plus 5 per second, so that retries still work at low traffic).
 * const catalogRetries = retryBudget({ ratio: 0.1, minPerSecond: 5 });
 * const search = retry({ maxAttempts: 3, retryBudget: catalogRetries });
 * const details = retry({ maxAttempts: 2, retryBudget: catalogRetries });
 * ```
 */
export function retryBudget(options?: RetryBudgetOptions): RetryBudget {
  return new RetryBudget(options);
}
