import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';

describe('systemClock.now', () => {
  it('reads performance.timeOrigin + performance.now(), before and after its first call', () => {
    // The first call loads `performance` and swaps in the plain reader; both must agree.
    for (let i = 0; i < 3; i++) {
      const before = performance.timeOrigin + performance.now();
      const now = systemClock.now();
      const after = performance.timeOrigin + performance.now();
      expect(now).toBeGreaterThanOrEqual(before);
      expect(now).toBeLessThanOrEqual(after);
    }
  });

  it('is monotonic and works when detached from the clock', () => {
    const { now } = systemClock;
    let last = now();
    for (let i = 0; i < 1000; i++) {
      const t = i % 2 === 0 ? now() : systemClock.now();
      expect(t).toBeGreaterThanOrEqual(last);
      last = t;
    }
    expect(Math.abs(last - Date.now())).toBeLessThan(1000);
  });
});
