import type { Clock } from '../core/clock.js';
import { TimeoutPolicy } from './timeout.js';

export interface BudgetOptions {
  clock?: Clock;
}

/**
 * Bounds the whole call — every attempt and every backoff sleep — to `ms`. Put it
 * outside `retry()`. Rejects with `TimeoutError { scope: 'budget' }` at the deadline.
 */
export function budget(ms: number | string, options?: BudgetOptions): TimeoutPolicy {
  return new TimeoutPolicy(ms as number, options, 'budget');
}
