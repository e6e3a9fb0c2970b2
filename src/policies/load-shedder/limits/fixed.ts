import { Validator } from '../../../core/validate.js';
import type { Limiter } from './limiter.js';

/** A limit that never moves; `loadShedder({ limit: 50 })` builds one for you. */
export class FixedLimiter implements Limiter {
  readonly algorithm = 'fixed';
  readonly adaptive = false;
  readonly limit: number;
  readonly min: number;
  readonly max: number;

  constructor(limit: number, path = 'limit') {
    const v = new Validator();
    if (!(
      limit === Infinity ||
      (typeof limit === 'number' && Number.isInteger(limit) && limit >= 1)
    )) {
      v.problem(path, 'an integer ≥ 1 or Infinity', limit);
    }
    v.done();
    this.limit = limit;
    this.min = limit;
    this.max = limit;
  }

  onSample(): void {
    // A fixed limit learns nothing from samples.
  }
}

/**
 * A constant concurrency limit (integer ≥ 1, or Infinity for none).
 *
 * @example
 * ```ts
 * import { fixedLimit, loadShedder } from 'bulwark';
 *
 * const shedder = loadShedder({ limit: fixedLimit(64) }); // the same as { limit: 64 }
 * ```
 */
export function fixedLimit(limit: number): FixedLimiter {
  return new FixedLimiter(limit);
}
