import { describe, expect, it } from 'vitest';
import { CountWindow } from '../../../src/policies/circuit-breaker/count-window.js';

describe('CountWindow', () => {
  it('CountWindow keeps running totals of the last n outcomes', () => {
    const w = new CountWindow(3);
    w.record(0, true, false);
    w.record(0, false, true);
    w.record(0, true, true);
    expect([w.calls, w.failures, w.slow]).toEqual([3, 2, 2]);
    w.record(0, false, false);
    expect([w.calls, w.failures, w.slow]).toEqual([3, 1, 2]);
    w.reset();
    expect([w.calls, w.failures, w.slow]).toEqual([0, 0, 0]);
  });
});
