import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEADLINE_HEADER,
  encodeDeadline,
  formatGrpcTimeout,
  parseDeadlineMs,
  parseGrpcTimeout,
  readDeadline,
} from '../../src/http.js';

describe('encodeDeadline', () => {
  it('sends the remaining ms minus the margin, in whole ms', () => {
    expect(encodeDeadline(1000, 10)).toBe('990');
    expect(encodeDeadline(1000.9, 10)).toBe('990');
    expect(encodeDeadline(1000)).toBe('990');
  });

  it('sends 0 when the margin eats what is left', () => {
    expect(encodeDeadline(5, 10)).toBe('0');
    expect(encodeDeadline(0, 10)).toBe('0');
  });

  it('sends nothing for an unbounded call', () => {
    expect(encodeDeadline(Infinity)).toBeUndefined();
    expect(encodeDeadline(NaN)).toBeUndefined();
  });

  it('never promises the server more than the caller has left', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1e9, noNaN: true }),
        fc.nat({ max: 1000 }),
        (left, margin) => {
          const sent = Number(encodeDeadline(left, margin));
          return sent >= 0 && sent <= Math.max(0, left - margin);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('parseGrpcTimeout', () => {
  it('reads every unit', () => {
    expect(parseGrpcTimeout('1H')).toBe(3_600_000);
    expect(parseGrpcTimeout('2M')).toBe(120_000);
    expect(parseGrpcTimeout('2S')).toBe(2000);
    expect(parseGrpcTimeout('100m')).toBe(100);
    expect(parseGrpcTimeout('500u')).toBe(0.5);
    expect(parseGrpcTimeout('3000000n')).toBe(3);
  });

  it('rejects values gRPC does not allow', () => {
    for (const bad of [
      undefined,
      null,
      '',
      '100',
      '123456789m',
      '-1m',
      '1.5S',
      'm',
      '10s',
      '10 m',
      '10ms',
    ]) {
      expect(parseGrpcTimeout(bad), String(bad)).toBeUndefined();
    }
  });

  it('round-trips through formatGrpcTimeout without ever growing', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000_000 }), (ms) => {
        const back = parseGrpcTimeout(formatGrpcTimeout(ms))!;
        // The finest unit that fits 8 digits: the loss is under one unit, i.e. under one
        // part in 10^5 of the value (a unit is at most a thousandth of 10^8 units).
        return back <= ms && ms - back < Math.max(1e-6, ms / 1e5);
      }),
      { numRuns: 200 },
    );
  });
});

describe('parseDeadlineMs', () => {
  it('accepts non-negative whole ms only', () => {
    expect(parseDeadlineMs('250')).toBe(250);
    expect(parseDeadlineMs('0')).toBe(0);
    for (const bad of ['-1', '1.5', '1e3', 'abc', '', ' ', '0x10', '1234567890123456']) {
      expect(parseDeadlineMs(bad), bad).toBeUndefined();
    }
  });
});

describe('readDeadline', () => {
  it('reads our header from node headers and from fetch Headers', () => {
    expect(readDeadline({ [DEADLINE_HEADER]: '800' })).toBe(800);
    expect(readDeadline(new Headers({ 'X-Bulwark-Deadline-Ms': '800' }))).toBe(800);
  });

  it('takes the tightest of our header, grpc-timeout and the Envoy header', () => {
    expect(
      readDeadline({
        [DEADLINE_HEADER]: '900',
        'grpc-timeout': '500m',
        'x-envoy-expected-rq-timeout-ms': '700',
      }),
    ).toBe(500);
    expect(readDeadline({ 'x-envoy-expected-rq-timeout-ms': '700', 'grpc-timeout': '1S' })).toBe(
      700,
    );
  });

  it('ignores malformed values instead of trusting them', () => {
    expect(readDeadline({ [DEADLINE_HEADER]: 'soon', 'grpc-timeout': '2S' })).toBe(2000);
    expect(readDeadline({ [DEADLINE_HEADER]: '-5' })).toBeUndefined();
  });

  it('takes the smallest of duplicated values', () => {
    expect(readDeadline({ [DEADLINE_HEADER]: '900, 300' })).toBe(300);
    expect(readDeadline({ [DEADLINE_HEADER]: ['900', '400'] })).toBe(400);
  });

  it('reads a configured header name and can ignore each source', () => {
    expect(readDeadline({ 'x-timeout-ms': '42' }, { header: 'X-Timeout-Ms' })).toBe(42);
    expect(readDeadline({ [DEADLINE_HEADER]: '42' }, { header: false })).toBeUndefined();
    expect(readDeadline({ 'grpc-timeout': '1S' }, { grpcTimeout: false })).toBeUndefined();
    expect(
      readDeadline({ 'x-envoy-expected-rq-timeout-ms': '9' }, { envoyTimeout: false }),
    ).toBeUndefined();
  });

  it('is undefined when no deadline header is present', () => {
    expect(readDeadline({})).toBeUndefined();
  });
});
