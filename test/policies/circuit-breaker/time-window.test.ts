import { describe, expect, it } from 'vitest';
import {
  SlowCallTimeWindow,
  TimeWindow,
} from '../../../src/policies/circuit-breaker/time-window.js';

describe('TimeWindow and SlowCallTimeWindow', () => {
  it('TimeWindow drops whole slices as time passes', () => {
    const w = new TimeWindow(1000, 4);
    w.record(0, true, false);
    w.record(260, false, false);
    w.record(510, true, false);
    expect([w.calls, w.failures]).toEqual([3, 2]);
    w.roll(1000); // slice 4: slice 0 leaves
    expect([w.calls, w.failures]).toEqual([2, 1]);
    w.roll(1499); // slice 5: slice 1 leaves
    expect([w.calls, w.failures]).toEqual([1, 1]);
    w.roll(10_000);
    expect([w.calls, w.failures]).toEqual([0, 0]);
    w.record(10_001, true, false);
    expect([w.calls, w.failures]).toEqual([1, 1]);
  });

  it('TimeWindow keeps exact counts with many calls in one slice', () => {
    const w = new TimeWindow(1000, 2);
    for (let i = 0; i < 100_000; i++) w.record(0, i % 3 === 0, false);
    expect([w.calls, w.failures]).toEqual([100_000, 33_334]);
    w.roll(500);
    w.roll(1000);
    expect([w.calls, w.failures]).toEqual([0, 0]);
  });

  it('TimeWindow stops counting a slice at its cap and still expires it exactly', () => {
    const cap = 2 ** 26 - 1;
    const w = new TimeWindow(1000, 1);
    // Prime the slice just below the cap (looping 67 million times would take seconds).
    (w as unknown as { cells: number[] }).cells[0] = (cap - 1) * 2 ** 26 + (cap - 1);
    w.calls = cap - 1;
    w.failures = cap - 1;
    w.record(0, true, false);
    w.record(0, true, false);
    expect([w.calls, w.failures]).toEqual([cap, cap]);
    w.roll(1000);
    expect([w.calls, w.failures]).toEqual([0, 0]);
  });

  it('SlowCallTimeWindow also counts slow calls per slice', () => {
    const w = new SlowCallTimeWindow(100, 2);
    w.record(0, false, true);
    w.record(50, false, true);
    w.record(60, true, false);
    expect([w.calls, w.failures, w.slow]).toEqual([3, 1, 2]);
    w.roll(100);
    expect([w.calls, w.failures, w.slow]).toEqual([2, 1, 1]);
  });

  it('SlowCallTimeWindow counts a slow call that arrives after the whole window expired', () => {
    const w = new SlowCallTimeWindow(1, 1);
    w.record(0, true, false);
    w.record(1, false, true);
    expect([w.calls, w.failures, w.slow]).toEqual([1, 0, 1]);
  });
});
