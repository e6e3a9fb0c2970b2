import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatRetryAfter, parseRetryAfter, retryAfterFromHeaders } from '../../src/http.js';

const NOW = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');

describe('parseRetryAfter', () => {
  it('reads delta-seconds as ms', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 3 ', NOW)).toBe(3000);
    expect(parseRetryAfter('0', NOW)).toBe(0);
  });

  it('reads an HTTP-date relative to now', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', NOW)).toBe(30_000);
  });

  it('reads the obsolete RFC 850 and asctime date forms as GMT', () => {
    expect(parseRetryAfter('Wednesday, 21-Oct-15 07:28:10 GMT', NOW)).toBe(10_000);
    expect(parseRetryAfter('Wed Oct 21 07:28:05 2015', NOW)).toBe(5000);
  });

  it('gives 0 for a date in the past', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:00:00 GMT', NOW)).toBe(0);
  });

  it('ignores absent and malformed values', () => {
    for (const bad of [
      undefined,
      null,
      '',
      '  ',
      '-1',
      '1.5',
      '10s',
      '+5',
      '1e3',
      'soon',
      'Someday, 99 Foo',
    ]) {
      expect(parseRetryAfter(bad, NOW), String(bad)).toBeUndefined();
    }
  });

  it('reads any whole number of seconds as that many thousand ms', () => {
    fc.assert(
      fc.property(fc.nat({ max: 10_000_000 }), (n) => parseRetryAfter(String(n), NOW) === n * 1000),
      { numRuns: 200 },
    );
  });

  it('round-trips a future HTTP-date to within the second it was truncated to', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 86_400_000 }), (ms) => {
        const date = new Date(NOW + ms).toUTCString();
        const back = parseRetryAfter(date, NOW)!;
        return back <= ms && back > ms - 1000;
      }),
      { numRuns: 200 },
    );
  });
});

describe('retryAfterFromHeaders', () => {
  it("measures an HTTP-date against the response's own Date header, not the local clock", () => {
    const headers = new Headers({
      date: 'Wed, 21 Oct 2015 07:28:00 GMT',
      'retry-after': 'Wed, 21 Oct 2015 07:28:02 GMT',
    });
    // The local clock is an hour off the server's: the server's 2 s still hold.
    expect(retryAfterFromHeaders(headers, NOW + 3_600_000)).toBe(2000);
  });

  it('falls back to the local clock without a Date header', () => {
    const headers = new Headers({ 'retry-after': 'Wed, 21 Oct 2015 07:28:02 GMT' });
    expect(retryAfterFromHeaders(headers, NOW)).toBe(2000);
  });

  it('is undefined without Retry-After', () => {
    expect(retryAfterFromHeaders(new Headers(), NOW)).toBeUndefined();
  });
});

describe('formatRetryAfter', () => {
  it('rounds up to whole seconds, at least 1', () => {
    expect(formatRetryAfter(1)).toBe('1');
    expect(formatRetryAfter(1000)).toBe('1');
    expect(formatRetryAfter(1001)).toBe('2');
    expect(formatRetryAfter(0)).toBe('1');
    expect(formatRetryAfter(Infinity)).toBe('1');
  });
});
