import { describe, expect, it } from 'vitest';
import { parseDuration, toMs, ConfigError } from '../../src/index.js';

describe('durations', () => {
  it.each([
    [250, 250],
    ['250ms', 250],
    ['2s', 2000],
    ['1.5s', 1500],
    ['1m', 60_000],
    ['1h', 3_600_000],
    [' 10 ms ', 10],
    ['Infinity', Infinity],
    [Infinity, Infinity],
    [0, 0],
  ])('reads %j as %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([[-1], ['-5ms'], ['10'], ['ten seconds'], ['5d'], [null], [{}], [NaN]])(
    'rejects %j',
    (input) => {
      expect(parseDuration(input)).toBeUndefined();
      expect(() => toMs(input, 'payments.timeout')).toThrow(ConfigError);
      expect(() => toMs(input, 'payments.timeout')).toThrow(
        /^payments\.timeout: expected a duration/,
      );
    },
  );

  it('rejects a duration string too large to be finite: Infinity must be written out', () => {
    const huge = '1'.repeat(400) + 'ms';
    expect(parseDuration(huge)).toBeUndefined();
    expect(parseDuration('1'.repeat(310) + 'h')).toBeUndefined();
    expect(() => toMs(huge, 'payments.budget')).toThrow(/^payments\.budget: expected a duration/);
  });
});
