import type { Clock } from '../core/clock.js';
import { TimeoutPolicy } from './timeout.js';

/** Options of `budget()`. */
export interface BudgetOptions {
  /** The clock to time on (default: the pipeline's clock, else the system clock). */
  clock?: Clock;
}

/**
 * Bounds the whole call — every attempt and every backoff sleep — to `ms` (≥ 1, or
 * `Infinity`). Put it
 * outside `retry()`. Rejects with `TimeoutError { scope: 'budget' }` at the deadline.
 * Retries inside it give up early, rather than sleep past what is left.
 *
 * @example
 * ```ts
 * import { budget, pipeline, retry, timeout } from 'bulwark';
 *
 * // Whatever the retries do, the caller has its answer (or a TimeoutError) within 1 s.
 * const rates = pipeline(budget('1s'), retry({ maxAttempts: 4 }), timeout('250ms'));
 * const table = await rates.execute(async (ctx) => {
 *   const res = await fetch('https://fx.internal/rates', { signal: ctx.signal });
 *   return res.json();
 * });
 * ```
 */
export function budget(ms: number | string, options?: BudgetOptions): TimeoutPolicy {
  return new TimeoutPolicy(ms as number, options, 'budget');
}
