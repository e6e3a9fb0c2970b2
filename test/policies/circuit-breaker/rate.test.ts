import { describe, expect, it } from 'vitest';
import { CountWindow } from '../../../src/policies/circuit-breaker/count-window.js';
import { OutcomeRate } from '../../../src/policies/circuit-breaker/rate.js';

describe('OutcomeRate', () => {
  it('a failure rate trips at the rate once minimumCalls outcomes are in', () => {
    const rule = new OutcomeRate('failures', 0.1, 30);
    const w = new CountWindow(30);
    let tripped = false;
    for (let i = 0; i < 30; i++) {
      w.record(0, i < 3, false);
      tripped = rule.record(i < 3, false, w);
    }
    // 3 / 30 is exactly 0.1, even though 0.1 × 30 is not 3 in floating point.
    expect(tripped).toBe(true);
  });

  it('a slow-call rate counts slow calls only, and never trips on zero of them', () => {
    const rule = new OutcomeRate('slow', 0.5, 4);
    const w = new CountWindow(4);
    const outcomes: [boolean, boolean][] = [
      [true, false],
      [true, false],
      [false, true],
      [true, false],
    ];
    const trips = outcomes.map(([failed, slow]) => {
      w.record(0, failed, slow);
      return rule.record(failed, slow, w);
    });
    // 1 slow of 4 is below 0.5, however many failures.
    expect(trips).toEqual([false, false, false, false]);
    w.record(0, false, true);
    expect(rule.record(false, true, w)).toBe(true); // 2 slow of the last 4
    // A rate of 0 still needs at least one counted outcome.
    const fast = new CountWindow(1);
    fast.record(0, false, false);
    expect(new OutcomeRate('slow', 0, 1).record(false, false, fast)).toBe(false);
  });

  it('waits for minimumCalls before judging', () => {
    const rule = new OutcomeRate('failures', 0.5, 3);
    const w = new CountWindow(10);
    w.record(0, true, false);
    expect(rule.record(true, false, w)).toBe(false);
    w.record(0, true, false);
    expect(rule.record(true, false, w)).toBe(false);
    w.record(0, false, false);
    expect(rule.record(false, false, w)).toBe(true);
  });
});
