import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { Validator, isPlainObject } from '../../src/core/validate.js';

function thrown(fn: () => void): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('isPlainObject', () => {
  it('accepts objects, including class instances and null-prototype objects', () => {
    expect(isPlainObject({})).toBe(true);
    expect(isPlainObject({ a: 1 })).toBe(true);
    expect(isPlainObject(Object.create(null))).toBe(true);
    expect(isPlainObject(new Map())).toBe(true);
  });

  it('rejects null, arrays, functions and primitives', () => {
    for (const value of [null, undefined, [], [1], () => {}, 0, 'a', true, 1n, Symbol('s')]) {
      expect(isPlainObject(value)).toBe(false);
    }
  });

  it('is true exactly for non-null, non-array objects (property)', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const expected = typeof value === 'object' && value !== null && !Array.isArray(value);
        expect(isPlainObject(value)).toBe(expected);
      }),
    );
  });
});

describe('Validator', () => {
  it('names paths under its prefix, and bare names without one', () => {
    expect(new Validator('payments.retry').path('maxAttempts')).toBe('payments.retry.maxAttempts');
    expect(new Validator().path('maxAttempts')).toBe('maxAttempts');
  });

  it('throws nothing when every value is valid or absent', () => {
    const v = new Validator('x');
    v.int('a', 3, 1, 0);
    v.number('b', undefined, 1, 0);
    v.bool('c', false, true);
    expect(v.problems).toEqual([]);
    expect(() => v.done()).not.toThrow();
  });

  it('collects every problem and throws one ConfigError listing them all', () => {
    const v = new Validator('db');
    v.int('maxAttempts', 0, 3, 1);
    v.number('ratio', 2, 0.5, 0, 1);
    v.bool('enabled', 'yes', true);
    const error = thrown(() => v.done());
    expect(error.code).toBe('ERR_CONFIG');
    expect(error.problems.map((p) => p.path)).toEqual(['db.maxAttempts', 'db.ratio', 'db.enabled']);
    expect(error.message.split('\n')).toEqual([
      'db.maxAttempts: expected integer ≥ 1, got 0',
      'db.ratio: expected number in [0, 1], got 2',
      'db.enabled: expected a boolean, got "yes"',
    ]);
  });

  describe('object', () => {
    it('treats a missing section as empty', () => {
      const v = new Validator('retry');
      expect(v.object(undefined, ['a'])).toEqual({});
      expect(v.problems).toEqual([]);
    });

    it('rejects null, arrays and primitives, naming the section (or "options")', () => {
      for (const value of [null, [], 3, 'x']) {
        const v = new Validator('retry');
        expect(v.object(value, ['a'])).toEqual({});
        expect(v.problems).toEqual([{ path: 'retry', expected: 'an options object', got: value }]);
      }
      const bare = new Validator();
      bare.object(null, []);
      expect(bare.problems[0]!.path).toBe('options');
    });

    it('reports each unknown key with the known ones, so a typo never falls back silently', () => {
      const v = new Validator('retry');
      const input = { maxAttempts: 3, maxAttemps: 4, delay: 1 };
      expect(v.object(input, ['maxAttempts', 'backoff'])).toBe(input);
      expect(v.problems.map((p) => p.path)).toEqual(['retry.maxAttemps', 'retry.delay']);
      expect(thrown(() => v.done()).message.split('\n')[0]).toBe(
        'retry.maxAttemps: unknown option (known: maxAttempts, backoff)',
      );
    });
  });

  describe('int', () => {
    it('returns the default for undefined and the value when it is an integer in range', () => {
      const v = new Validator();
      expect(v.int('n', undefined, 7, 1)).toBe(7);
      expect(v.int('n', 1, 7, 1)).toBe(1);
      expect(v.int('n', 10, 7, 1, 10)).toBe(10);
      expect(v.problems).toEqual([]);
    });

    it('rejects fractions, NaN, strings, and values out of range, returning the default', () => {
      const v = new Validator();
      for (const bad of [1.5, NaN, '3', 0, 11, Infinity]) expect(v.int('n', bad, 7, 1, 10)).toBe(7);
      expect(v.problems).toHaveLength(6);
      expect(v.problems[0]!.expected).toBe('integer in [1, 10]');
      const open = new Validator();
      open.int('n', -1, 7, 0);
      expect(open.problems[0]!.expected).toBe('integer ≥ 0');
    });
  });

  describe('number', () => {
    it('accepts any number in range, Infinity included when the range is open', () => {
      const v = new Validator();
      expect(v.number('x', 0.25, 1, 0, 1)).toBe(0.25);
      expect(v.number('x', Infinity, 1, 0)).toBe(Infinity);
      expect(v.problems).toEqual([]);
    });

    it('rejects NaN, non-numbers and values out of range, describing them as asked', () => {
      const v = new Validator();
      expect(v.number('x', NaN, 1, 0)).toBe(1);
      expect(v.number('x', '1', 1, 0)).toBe(1);
      expect(v.number('x', -0.1, 1, 0, 1, 'a ratio in [0, 1]')).toBe(1);
      expect(v.problems.map((p) => p.expected)).toEqual([
        'number ≥ 0',
        'number ≥ 0',
        'a ratio in [0, 1]',
      ]);
    });
  });

  describe('duration', () => {
    it('reads ms numbers and strings with units', () => {
      const v = new Validator();
      expect(v.duration('d', 250, 1)).toBe(250);
      expect(v.duration('d', '2s', 1)).toBe(2_000);
      expect(v.duration('d', '1.5m', 1)).toBe(90_000);
      expect(v.duration('d', undefined, 42)).toBe(42);
      expect(v.problems).toEqual([]);
    });

    it('takes Infinity only where allowed, and enforces the minimum', () => {
      const v = new Validator('t');
      expect(v.duration('d', Infinity, 5, { allowInfinity: true })).toBe(Infinity);
      expect(v.duration('d', 'Infinity', 5, { allowInfinity: true })).toBe(Infinity);
      expect(v.problems).toEqual([]);
      expect(v.duration('d', Infinity, 5)).toBe(5);
      expect(v.duration('d', 9, 5, { min: 10 })).toBe(5);
      expect(v.duration('d', 'soon', 5)).toBe(5);
      expect(v.duration('d', -1, 5)).toBe(5);
      expect(v.problems.map((p) => p.expected)).toEqual([
        "a duration ≥ 0 ms (number of ms or '250ms', '2s', '1m')",
        "a duration ≥ 10 ms (number of ms or '250ms', '2s', '1m')",
        "a duration ≥ 0 ms (number of ms or '250ms', '2s', '1m')",
        "a duration ≥ 0 ms (number of ms or '250ms', '2s', '1m')",
      ]);
      const inf = new Validator();
      inf.duration('d', 'never', 5, { allowInfinity: true });
      expect(inf.problems[0]!.expected).toMatch(/ or Infinity$/);
    });
  });

  it('oneOf accepts only the listed strings and lists them quoted when it refuses', () => {
    const v = new Validator('breaker');
    expect(v.oneOf('mode', 'count', ['count', 'time'] as const, 'time')).toBe('count');
    expect(v.oneOf('mode', 'Count', ['count', 'time'] as const, 'time')).toBe('time');
    expect(v.oneOf('mode', 1, ['count', 'time'] as const, 'time')).toBe('time');
    expect(v.problems.map((p) => [p.path, p.expected])).toEqual([
      ['breaker.mode', "'count' | 'time'"],
      ['breaker.mode', "'count' | 'time'"],
    ]);
  });

  it('func accepts functions only', () => {
    const v = new Validator();
    const fn = () => 1;
    const def = () => 0;
    expect(v.func('f', fn, def)).toBe(fn);
    expect(v.func('f', undefined, def)).toBe(def);
    expect(v.func('f', 'fn', def)).toBe(def);
    expect(v.problems).toEqual([{ path: 'f', expected: 'a function', got: 'fn' }]);
  });

  it('bool accepts booleans only (no truthy strings or numbers)', () => {
    const v = new Validator();
    expect(v.bool('b', false, true)).toBe(false);
    expect(v.bool('b', 1, true)).toBe(true);
    expect(v.bool('b', 'false', true)).toBe(true);
    expect(v.problems).toHaveLength(2);
  });
});

describe('Validator properties', () => {
  it('int returns the value exactly when it is an integer in [min, max], else the default and one problem', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: -100, max: 100 }), fc.double(), fc.string(), fc.constant(null)),
        fc.integer({ min: -50, max: 50 }),
        fc.integer({ min: 0, max: 50 }),
        (value, min, span) => {
          const max = min + span;
          const v = new Validator('p');
          const ok =
            typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
          const got = v.int('n', value, -999, min, max);
          expect(got).toBe(ok ? value : -999);
          expect(v.problems).toHaveLength(ok ? 0 : 1);
          if (!ok) expect(v.problems[0]!.path).toBe('p.n');
        },
      ),
    );
  });

  it('a duration given as a number of ms comes back unchanged when finite and ≥ min', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e9, noNaN: true }), fc.nat(1_000), (ms, min) => {
        const v = new Validator();
        const got = v.duration('d', ms, -1, { min });
        expect(got).toBe(ms >= min ? ms : -1);
        expect(v.problems).toHaveLength(ms >= min ? 0 : 1);
      }),
    );
  });

  it('done throws exactly when a problem was recorded, listing them all in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.boolean(), fc.string(), fc.integer()), { maxLength: 8 }),
        (values) => {
          const v = new Validator('s');
          values.forEach((value, i) => v.bool(`k${i}`, value, true));
          const bad = values.flatMap((value, i) => (typeof value === 'boolean' ? [] : [`s.k${i}`]));
          if (bad.length === 0) expect(() => v.done()).not.toThrow();
          else expect(thrown(() => v.done()).problems.map((p) => p.path)).toEqual(bad);
        },
      ),
    );
  });
});
