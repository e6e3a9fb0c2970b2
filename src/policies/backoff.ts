import type { Validator } from '../core/validate.js';

export type Jitter = 'full' | 'equal' | 'decorrelated' | 'none';

export interface ExponentialBackoffOptions {
  /** First delay in ms (default 100). */
  initial?: number | string;
  /** Growth per retry (default 2). */
  multiplier?: number;
  /** Cap in ms, applied before jitter (default 10 000). */
  max?: number | string;
  /** default 'full' */
  jitter?: Jitter;
}

/** `(retry, errorOrResult) => ms`, where retry is 1 for the first retry. */
export type BackoffFunction = (retry: number, errorOrResult: unknown) => number;

export type BackoffOption = number | string | ExponentialBackoffOptions | BackoffFunction;

/** Computes the delay before retry number `retry` (1-based). */
export type Backoff = (retry: number, previousDelay: number, outcome: unknown) => number;

const JITTERS = ['full', 'equal', 'decorrelated', 'none'] as const;

/**
 * Exponential delay with jitter, cap applied before jitter so every delay lies in
 * [0, max]. Decorrelated jitter follows the AWS formula: min(max, random(initial, 3 × previous)).
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
  if (typeof value !== 'object' || value === null) {
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
