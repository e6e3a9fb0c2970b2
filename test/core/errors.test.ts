import { describe, expect, it } from 'vitest';
import {
  BulwarkError,
  BulkheadRejectedError,
  CircuitOpenError,
  ConfigError,
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  LoadShedError,
  TimeoutError,
  isBulwarkError,
} from '../../src/index.js';
import { withoutStack } from '../../src/core/errors.js';

describe('errors', () => {
  it('carry stable codes', () => {
    expect(new TimeoutError('attempt', 100).code).toBe('ERR_TIMEOUT');
    expect(new CircuitOpenError('open', 10).code).toBe('ERR_CIRCUIT_OPEN');
    expect(new BulkheadRejectedError('full', 'x').code).toBe('ERR_BULKHEAD_FULL');
    expect(new LoadShedError('capacity', 'x').code).toBe('ERR_LOAD_SHED');
    expect(new IdempotencyInProgressError().code).toBe('ERR_IDEMPOTENCY_IN_PROGRESS');
    expect(new IdempotencyKeyReuseError().code).toBe('ERR_IDEMPOTENCY_KEY_REUSED');
    expect(new ConfigError([{ path: 'a', expected: 'b', got: 1 }]).code).toBe('ERR_CONFIG');
  });

  it('answer instanceof for their own class and BulwarkError only', () => {
    const e = new TimeoutError('budget', 5);
    expect(e).toBeInstanceOf(TimeoutError);
    expect(e).toBeInstanceOf(BulwarkError);
    expect(e).toBeInstanceOf(Error);
    expect(e).not.toBeInstanceOf(CircuitOpenError);
    expect(new Error('x')).not.toBeInstanceOf(BulwarkError);
    expect(isBulwarkError(e)).toBe(true);
    expect(isBulwarkError(new Error('x'))).toBe(false);
    expect(isBulwarkError(null)).toBe(false);
  });

  it('recognise an error made by another copy of the library by its brand', () => {
    // What the CJS copy's TimeoutError looks like to the ESM copy: a different class with the same brand.
    const foreign = Object.defineProperty(
      new Error('from the other copy'),
      Symbol.for('bulwark.error.kind'),
      {
        value: 'TimeoutError',
      },
    );
    expect(foreign).toBeInstanceOf(TimeoutError);
    expect(foreign).toBeInstanceOf(BulwarkError);
    expect(foreign).not.toBeInstanceOf(LoadShedError);
    expect(isBulwarkError(foreign)).toBe(true);
  });

  it('name the limit in the message', () => {
    expect(new TimeoutError('attempt', 250).message).toBe('attempt timed out after 250 ms');
    expect(new TimeoutError('budget', 2000).message).toBe('call exceeded its time budget of 2 s');
    expect(new CircuitOpenError('open', 1500, 'payments').message).toBe(
      'payments: circuit is open; next trial in 1500 ms',
    );
  });

  it('withoutStack builds an error with no stack frames and restores the limit', () => {
    const before = Error.stackTraceLimit;
    const e = withoutStack(() => new LoadShedError('capacity', 'shed'));
    expect(e.stack?.split('\n').length).toBe(1);
    expect(Error.stackTraceLimit).toBe(before);
  });

  it('ConfigError lists every problem with its path', () => {
    const e = new ConfigError([
      { path: 'payments.retry.maxAttempts', expected: 'integer ≥ 1', got: -2 },
      { path: 'payments.timeout', expected: 'a duration', got: 'soon' },
    ]);
    expect(e.message).toBe(
      'payments.retry.maxAttempts: expected integer ≥ 1, got -2\npayments.timeout: expected a duration, got "soon"',
    );
  });
});
