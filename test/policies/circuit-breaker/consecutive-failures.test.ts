import { describe, expect, it } from 'vitest';
import { ConsecutiveFailures } from '../../../src/policies/circuit-breaker/consecutive-failures.js';

describe('ConsecutiveFailures', () => {
  it('ConsecutiveFailures trips on the nth failure in a row', () => {
    const rule = new ConsecutiveFailures(2);
    expect(rule.record(true)).toBe(false);
    expect(rule.record(false)).toBe(false);
    expect(rule.record(true)).toBe(false);
    expect(rule.record(true)).toBe(true);
  });
});
