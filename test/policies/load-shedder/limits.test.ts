import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/core/errors.js';
import {
  adaptive,
  type AdaptiveAlgorithm,
} from '../../../src/policies/load-shedder/limits/adaptive.js';
import { AimdLimiter } from '../../../src/policies/load-shedder/limits/aimd.js';
import { fixedLimit } from '../../../src/policies/load-shedder/limits/fixed.js';
import { GradientLimiter } from '../../../src/policies/load-shedder/limits/gradient.js';
import type { Limiter } from '../../../src/policies/load-shedder/limits/limiter.js';
import { VegasLimiter } from '../../../src/policies/load-shedder/limits/vegas.js';

const ALGORITHMS: readonly AdaptiveAlgorithm[] = ['gradient', 'aimd', 'vegas'];

/** Feeds RTTs one after the other, as if each call finished `rtt` ms after it started. */
function feed(
  limiter: Limiter,
  rtts: readonly number[],
  opts: { dropped?: boolean; inFlight?: (limit: number) => number; start?: number } = {},
): number {
  let now = opts.start ?? 0;
  for (const rtt of rtts) {
    now += rtt;
    limiter.onSample({
      rtt,
      inFlight: opts.inFlight ? opts.inFlight(limiter.limit) : limiter.limit,
      dropped: opts.dropped ?? false,
      now,
    });
  }
  return now;
}

const flat = (n: number, rtt = 10) => Array.from({ length: n }, () => rtt);
/** RTTs that rise linearly, the shape of a queue building up behind the limit. */
const rising = (n: number, from: number, to: number) =>
  Array.from({ length: n }, (_, i) => from + ((to - from) * (i + 1)) / n);

describe('fixedLimit', () => {
  it('keeps its limit whatever the samples say', () => {
    const l = fixedLimit(12);
    feed(l, flat(100));
    feed(l, flat(10, 500), { dropped: true });
    expect(l.limit).toBe(12);
    expect(l.adaptive).toBe(false);
  });

  it('rejects a limit that is not a positive integer', () => {
    expect(() => fixedLimit(0)).toThrow(ConfigError);
    expect(() => fixedLimit(2.5)).toThrow(ConfigError);
    expect(fixedLimit(Infinity).limit).toBe(Infinity);
  });
});

describe.each(ALGORITHMS)('adaptive %s limiter', (algorithm) => {
  const make = (extra: Record<string, unknown> = {}) =>
    adaptive({ algorithm, min: 2, max: 200, initial: 20, ...extra } as Parameters<
      typeof adaptive
    >[0]);

  it('raises the limit while latency stays flat and the limit is in use', () => {
    const l = make();
    feed(l, flat(300));
    expect(l.limit).toBeGreaterThan(20);
  });

  it('does not raise the limit while less than half of it is in use', () => {
    const l = make();
    feed(l, flat(300), { inFlight: () => 3 });
    expect(l.limit).toBeLessThanOrEqual(20);
  });

  it('lowers the limit on drops', () => {
    const l = make();
    let now = feed(l, flat(100));
    const before = l.limit;
    // Drops of calls that each started after the previous one finished.
    for (let i = 0; i < 20; i++) {
      now += 50;
      l.onSample({ rtt: 10, inFlight: l.limit, dropped: true, now });
    }
    expect(l.limit).toBeLessThan(before);
  });

  it('lowers the limit when latency grows', () => {
    const l = make(algorithm === 'aimd' ? { latencyThreshold: 25 } : {});
    const now = feed(l, flat(100));
    const before = l.limit;
    feed(l, rising(60, 10, 60), { start: now });
    expect(l.limit).toBeLessThan(before);
  });

  it('starts at initial and reports its algorithm', () => {
    const l = make();
    expect(l.limit).toBe(20);
    expect(l.algorithm).toBe(algorithm);
    expect(l.adaptive).toBe(true);
  });

  it('never leaves [min, max] and always reports an integer limit, whatever the samples', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 0, max: 100 }),
        fc.array(
          fc.record({
            rtt: fc.oneof(
              fc.double({ min: 0, max: 1e5, noNaN: true }),
              fc.constantFrom(0, Infinity, NaN, -5),
            ),
            inFlight: fc.integer({ min: 0, max: 500 }),
            dropped: fc.boolean(),
            gap: fc.double({ min: 0, max: 1000, noNaN: true }),
          }),
          { maxLength: 300 },
        ),
        (min, span, samples) => {
          const max = min + span;
          const l = adaptive({
            algorithm,
            min,
            max,
            initial: min + Math.floor(span / 2),
          } as Parameters<typeof adaptive>[0]);
          let now = 0;
          for (const s of samples) {
            now += s.gap;
            l.onSample({ rtt: s.rtt, inFlight: s.inFlight, dropped: s.dropped, now });
            expect(Number.isInteger(l.limit)).toBe(true);
            expect(l.limit).toBeGreaterThanOrEqual(min);
            expect(l.limit).toBeLessThanOrEqual(max);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('stays at max under endless good news and at min under endless drops', () => {
    const up = make();
    feed(up, flat(30_000));
    expect(up.limit).toBe(200);
    const down = make();
    let now = 0;
    for (let i = 0; i < 2000; i++) {
      now += 100;
      down.onSample({ rtt: 10, inFlight: down.limit, dropped: true, now });
    }
    expect(down.limit).toBe(2);
  });
});

describe('gradient specifics', () => {
  it('shrinks by at most half a step per sample, however slow the sample', () => {
    const l = adaptive({
      algorithm: 'gradient',
      min: 1,
      max: 1000,
      initial: 100,
      smoothing: 1,
      queueSize: 0,
    });
    feed(l, flat(20));
    const before = l.limit;
    l.onSample({ rtt: 100_000, inFlight: before, dropped: false, now: 1e6 });
    expect(l.limit).toBe(Math.floor(before / 2));
  });

  it('lets its long-term RTT recover after a long overload', () => {
    const l = adaptive({
      algorithm: 'gradient',
      min: 1,
      max: 1000,
      initial: 50,
    }) as GradientLimiter;
    feed(l, flat(2000, 200));
    const high = l.longTermRtt;
    feed(l, flat(200, 10));
    expect(l.longTermRtt).toBeLessThan(high / 4);
  });

  it('accepts a queue allowance that depends on the limit', () => {
    const l = adaptive({
      algorithm: 'gradient',
      initial: 16,
      queueSize: (limit) => Math.sqrt(limit),
      smoothing: 1,
    });
    l.onSample({ rtt: 10, inFlight: 16, dropped: false, now: 10 });
    expect(l.limit).toBe(20);
  });
});

describe('aimd specifics', () => {
  it('adds about `increase` per limit-worth of successful samples', () => {
    const l = adaptive({ algorithm: 'aimd', initial: 10, increase: 1 });
    feed(l, flat(10));
    expect(l.limit).toBe(10);
    feed(l, flat(2));
    expect(l.limit).toBe(11);
  });

  it('grows at exactly half use: 10 in flight of a limit of 20 is "at least half"', () => {
    const l = adaptive({ algorithm: 'aimd', initial: 20, increase: 1 });
    for (let i = 0; i < 100; i++) l.onSample({ rtt: 10, inFlight: 10, dropped: false, now: i });
    // 20 samples at 1/20 each reach 21; then 10 of 21 is less than half and growth stops.
    // (Compared with the fractional estimate, 20.05 already stopped it: the limit stayed 20.)
    expect(l.limit).toBe(21);
  });

  it('does not grow below half use', () => {
    const l = adaptive({ algorithm: 'aimd', initial: 20, increase: 1 });
    for (let i = 0; i < 100; i++) l.onSample({ rtt: 10, inFlight: 9, dropped: false, now: i });
    expect(l.limit).toBe(20);
  });

  it('cuts once per round trip: drops of calls started before the cut do not cut again', () => {
    const l = adaptive({ algorithm: 'aimd', initial: 100, backoffRatio: 0.5 }) as AimdLimiter;
    // Ten calls all started at t=0 and time out together at t=100.
    for (let i = 0; i < 10; i++)
      l.onSample({ rtt: 100, inFlight: 100, dropped: true, now: 100 + i * 0.01 });
    expect(l.limit).toBe(50);
    // A call admitted after the cut that also drops: a new cut.
    l.onSample({ rtt: 50, inFlight: 50, dropped: true, now: 200 });
    expect(l.limit).toBe(25);
  });

  it('counts a call slower than latencyThreshold as a drop', () => {
    const l = adaptive({ algorithm: 'aimd', initial: 40, latencyThreshold: '100ms' });
    l.onSample({ rtt: 150, inFlight: 40, dropped: false, now: 150 });
    expect(l.limit).toBe(36);
  });
});

describe('vegas specifics', () => {
  it('measures the queue against the lowest RTT seen', () => {
    const l = adaptive({ algorithm: 'vegas', initial: 40 }) as VegasLimiter;
    feed(l, [20, 10, 15]);
    expect(l.baseRtt).toBe(10);
  });

  it('holds the limit while the estimated queue is between alpha and beta', () => {
    const l = adaptive({
      algorithm: 'vegas',
      initial: 10,
      alpha: 3,
      beta: 6,
      probeMultiplier: 1000,
    });
    l.onSample({ rtt: 10, inFlight: 10, dropped: false, now: 10 });
    const settled = l.limit;
    // queue = ceil(limit × (1 − 10/rtt)) = 4 or 5 for rtt 16..20 at a limit near 16: between alpha and beta.
    const rtt = 10 / (1 - 4.5 / settled);
    l.onSample({ rtt, inFlight: settled, dropped: false, now: 100 });
    expect(l.limit).toBe(settled);
  });

  it('moves about one step per round trip, spread over a limit-worth of samples', () => {
    const l = adaptive({ algorithm: 'vegas', initial: 10, probeMultiplier: 1000 });
    l.onSample({ rtt: 10, inFlight: 10, dropped: false, now: 10 });
    // Queue ≈ 9 of 10.6 ≥ beta: shrink by lg(limit) = 1 over the next ~10 samples, not 10.
    for (let i = 0; i < 10; i++) l.onSample({ rtt: 100, inFlight: 10, dropped: false, now: 200 });
    expect(l.limit).toBe(9);
  });

  it('re-measures the no-load RTT after probeMultiplier × limit samples', () => {
    const l = adaptive({
      algorithm: 'vegas',
      min: 5,
      max: 5,
      initial: 5,
      probeMultiplier: 2,
    }) as VegasLimiter;
    feed(l, [10, 30, 30, 30, 30, 30, 30, 30, 30, 30]);
    expect(l.baseRtt).toBe(30);
  });
});

describe('adaptive() validation', () => {
  function problemsOf(run: () => unknown): string[] {
    try {
      run();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as ConfigError).problems.map((p) => p.path);
    }
    throw new Error('expected a ConfigError');
  }

  it('defaults to gradient with min 1, max 1000, initial 20', () => {
    const l = adaptive();
    expect([l.algorithm, l.min, l.max, l.limit]).toEqual(['gradient', 1, 1000, 20]);
  });

  it('lists every bad option with its path', () => {
    expect(
      problemsOf(() =>
        adaptive({
          algorithm: 'gradient',
          min: 0,
          smoothing: 2,
          tolerance: 0.5,
          longWindow: 'soon',
        } as never),
      ),
    ).toEqual(['adaptive.min', 'adaptive.smoothing', 'adaptive.tolerance', 'adaptive.longWindow']);
  });

  it('rejects min above max and initial outside [min, max]', () => {
    expect(problemsOf(() => adaptive({ min: 10, max: 5 }))).toContain('adaptive.max');
    expect(problemsOf(() => adaptive({ min: 10, max: 50, initial: 60 }))).toEqual([
      'adaptive.initial',
    ]);
  });

  it('rejects an option that belongs to another algorithm', () => {
    expect(problemsOf(() => adaptive({ algorithm: 'aimd', tolerance: 2 } as never))).toEqual([
      'adaptive.tolerance',
    ]);
    expect(problemsOf(() => adaptive({ algorithm: 'sawtooth' } as never))).toEqual([
      'adaptive.algorithm',
    ]);
  });

  it('validates the aimd and vegas parameters', () => {
    expect(
      problemsOf(() =>
        adaptive({
          algorithm: 'aimd',
          backoffRatio: 1,
          increase: 0,
          latencyThreshold: 'soon',
        } as never),
      ),
    ).toEqual(['adaptive.increase', 'adaptive.backoffRatio', 'adaptive.latencyThreshold']);
    expect(
      problemsOf(() => adaptive({ algorithm: 'vegas', alpha: 6, beta: 3, probeMultiplier: 0 })),
    ).toEqual(['adaptive.beta', 'adaptive.probeMultiplier']);
  });

  it('fits the default initial inside explicit bounds', () => {
    expect(adaptive({ min: 50 }).limit).toBe(50);
    expect(adaptive({ max: 8 }).limit).toBe(8);
  });

  it('builds each algorithm class', () => {
    expect(adaptive({ algorithm: 'aimd' })).toBeInstanceOf(AimdLimiter);
    expect(adaptive({ algorithm: 'vegas' })).toBeInstanceOf(VegasLimiter);
    expect(adaptive({ algorithm: 'gradient' })).toBeInstanceOf(GradientLimiter);
  });
});
