import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { exponentialBackoff, retry, ConfigError } from '../../../src/index.js';
import { compileBackoff } from '../../../src/policies/retry/backoff.js';
import { Validator } from '../../../src/core/validate.js';

describe('backoff', () => {
  it('grows exponentially without jitter and caps at max', () => {
    const b = exponentialBackoff(100, 2, 1000, 'none', Math.random);
    expect([1, 2, 3, 4, 5, 6].map((n) => b(n, 0, undefined))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
  });

  it('full jitter scales the capped delay by the random source', () => {
    const b = exponentialBackoff(100, 2, 1000, 'full', () => 0.5);
    expect(b(1, 0, undefined)).toBe(50);
    expect(b(10, 0, undefined)).toBe(500);
  });

  it('equal jitter keeps at least half of the capped delay', () => {
    const b = exponentialBackoff(100, 2, 1000, 'equal', () => 0);
    expect(b(3, 0, undefined)).toBe(200);
  });

  it('decorrelated jitter draws between initial and three times the previous delay', () => {
    const b = exponentialBackoff(100, 2, 10_000, 'decorrelated', () => 1);
    expect(b(1, 0, undefined)).toBe(100);
    expect(b(2, 100, undefined)).toBe(300);
    expect(b(3, 300, undefined)).toBe(900);
  });

  it('accepts a constant, a duration string and a function', () => {
    const v = new Validator('retry');
    expect(compileBackoff(250, v, Math.random)(3, 0, undefined)).toBe(250);
    expect(compileBackoff('1s', v, Math.random)(1, 0, undefined)).toBe(1000);
    const seen: unknown[] = [];
    const fn = compileBackoff((n: number, o: unknown) => (seen.push(o), n * 10), v, Math.random);
    expect(fn(4, 0, 'outcome')).toBe(40);
    expect(seen).toEqual(['outcome']);
    expect(v.problems).toEqual([]);
  });

  it.each([
    [
      { jitter: 'random' },
      /retry\.backoff\.jitter: expected 'full' \| 'equal' \| 'decorrelated' \| 'none', got "random"/,
    ],
    [{ initial: -1 }, /retry\.backoff\.initial: expected a duration/],
    [{ multiplier: 0.5 }, /retry\.backoff\.multiplier: expected number ≥ 1, got 0\.5/],
    [{ initial: 500, max: 100 }, /retry\.backoff\.max: expected a duration ≥ backoff\.initial/],
    [
      { factor: 2 },
      /retry\.backoff\.factor: unknown option \(known: initial, multiplier, max, jitter\)/,
    ],
    [-5, /retry\.backoff: expected a duration/],
  ])('rejects bad backoff %j', (backoff, message) => {
    expect(() => retry({ backoff: backoff as never })).toThrow(ConfigError);
    expect(() => retry({ backoff: backoff as never })).toThrow(message);
  });

  it('every jittered delay lies in [0, cap]', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5000 }),
        fc.double({ min: 1, max: 4, noNaN: true }),
        fc.integer({ min: 0, max: 60_000 }),
        fc.constantFrom('full', 'equal', 'decorrelated', 'none' as const),
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0, max: 0.9999999, noNaN: true }),
        fc.integer({ min: 0, max: 100_000 }),
        (initial, multiplier, extra, jitter, retryNo, r, previous) => {
          const max = initial + extra;
          const b = exponentialBackoff(initial, multiplier, max, jitter, () => r);
          const d = b(retryNo, Math.min(previous, max), undefined);
          return d >= 0 && d <= max;
        },
      ),
      { numRuns: 500 },
    );
  });
});
