import type { Validator } from '../../core/validate.js';

/**
 * How a backoff delay `d` is randomised, so that clients that failed together do not
 * retry together: `'full'` uniform in [0, d], `'equal'` in [d/2, d], `'decorrelated'`
 * grows from the previous delay (AWS's formula), `'none'` exactly d.
 */
export type Jitter = 'full' | 'equal' | 'decorrelated' | 'none';

/** The object form of retry's `backoff` option: exponential growth, capped, with jitter. */
export interface ExponentialBackoffOptions {
  /** First delay in ms (default 100). */
  initial?: number | string;
  /** Growth per retry (default 2). */
  multiplier?: number;
  /** Cap in ms, applied before jitter (default 10 000). */
  max?: number | string;
  /** How each delay is randomised (default 'full'). */
  jitter?: Jitter;
}

/** `(retry, errorOrResult) => ms`, where retry is 1 for the first retry. */
export type BackoffFunction = (retry: number, errorOrResult: unknown) => number;

/**
 * The `backoff` option of `retry()`: a constant delay (`200` or `'200ms'`), exponential
 * options, or a function of the retry number and the failed outcome.
 */
export type BackoffOption = number | string | ExponentialBackoffOptions | BackoffFunction;

/** Computes the delay before retry number `retry` (1-based). */
export type Backoff = (retry: number, previousDelay: number, outcome: unknown) => number;

const JITTERS = ['full', 'equal', 'decorrelated', 'none'] as const;

/**
 * Exponential delay with jitter, cap applied before jitter so every delay lies in
 * [0, max]. Decorrelated jitter follows the AWS formula: min(max, random(initial, 3 × previous)).
 *
 * `retry()` builds one from its `backoff` option, so you rarely need this directly: use it
 * to preview a schedule, or inside a `backoff` function of your own.
 *
 * @param initial - First delay, in ms.
 * @param multiplier - Growth per retry.
 * @param max - Cap in ms, applied before jitter.
 * @param jitter - How each delay is randomised.
 * @param random - Source of randomness in [0, 1), e.g. `Math.random`.
 * @returns `(retry, previousDelay, outcome) => ms`, where `retry` is 1 for the first retry.
 *
 * @example
 * ```ts
 * import { exponentialBackoff, retry, statusOf } from 'bulwark';
 *
 * const delay = exponentialBackoff(100, 2, 1000, 'none', Math.random);
 * [1, 2, 3, 4, 5].map((n) => delay(n, 0, undefined)); // [100, 200, 400, 800, 1000]
 *
 * // The same schedule, four times longer when the server says it is throttling us.
 * const policy = retry({
 *   backoff: (n, outcome) => delay(n, 0, outcome) * (statusOf(outcome) === 429 ? 4 : 1),
 * });
 * ```
 */
export function exponentialBackoff(
  initial: number,
  multiplier: number,
  max: number,
  jitter: Jitter,
  random: () => number,
): Backoff {
  return (retry, previous) => {
    if (jitter === 'decorrelated') {
      const upper = Math.max(initial, previous * 3);
      return Math.min(max, initial + random() * (upper - initial));
    }
    const base = Math.min(max, initial * Math.pow(multiplier, retry - 1));
    switch (jitter) {
      case 'full':
        return random() * base;
      case 'equal':
        return base / 2 + random() * (base / 2);
      default:
        return base;
    }
  };
}

/** Validates a backoff option (path `backoff`) and compiles it to a Backoff. */
export function compileBackoff(value: unknown, v: Validator, random: () => number): Backoff {
  if (value === undefined) return exponentialBackoff(100, 2, 10_000, 'full', random);
  if (typeof value === 'function') {
    const fn = value as BackoffFunction;
    return (retry, _previous, outcome) => {
      const ms = fn(retry, outcome);
      return typeof ms === 'number' && ms >= 0 ? ms : 0;
    };
  }
  if (typeof value === 'number' || typeof value === 'string') {
    const ms = v.duration('backoff', value, 0);
    return () => ms;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    v.problem(
      'backoff',
      'a number of ms, { initial, multiplier, max, jitter } or a function',
      value,
    );
    return () => 0;
  }
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!['initial', 'multiplier', 'max', 'jitter'].includes(key)) {
      v.unknownKey(`backoff.${key}`, ['initial', 'multiplier', 'max', 'jitter']);
    }
  }
  const initial = v.duration('backoff.initial', o.initial, 100);
  const multiplier = v.number('backoff.multiplier', o.multiplier, 2, 1);
  const max = v.duration('backoff.max', o.max, 10_000);
  const jitter = v.oneOf('backoff.jitter', o.jitter, JITTERS, 'full');
  if (max < initial)
    v.problem('backoff.max', `a duration ≥ backoff.initial (${initial} ms)`, o.max);
  return exponentialBackoff(initial, multiplier, max, jitter, random);
}
