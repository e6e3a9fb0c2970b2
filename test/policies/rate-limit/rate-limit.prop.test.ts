import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryRateLimitStore, RateLimitError, TimeoutError } from '../../../src/index.js';
import { GcraState, gcraLimit } from '../../../src/policies/rate-limit/gcra.js';
import { rateLimit } from '../../../src/policies/rate-limit/rate-limit.js';
import { VirtualClock } from '../../../src/testing/index.js';
import { collectUnhandledRejections } from '../../support/async.js';

const unhandled = collectUnhandledRejections();

interface Arrival {
  at: number;
  budget: number | undefined;
  abortAfter: number | undefined;
}

const arrivalArb: fc.Arbitrary<Arrival> = fc.record({
  at: fc.integer({ min: 0, max: 1500 }),
  budget: fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined }),
  abortAfter: fc.option(fc.integer({ min: 0, max: 300 }), { nil: undefined }),
});

const limitArb = fc.record({
  rate: fc.integer({ min: 1, max: 20 }),
  per: fc.constantFrom(100, 250, 1000),
  burst: fc.integer({ min: 0, max: 3 }),
  wait: fc.constantFrom(0, 50, 300, Infinity),
  shared: fc.boolean(),
});

interface Record {
  arrival: Arrival;
  launchedAt: number;
  startedAt?: number;
  outcome?: 'ok' | 'limited' | 'aborted' | 'timeout';
}

/** Launches every arrival on the virtual clock and runs until nothing is left. */
async function simulate(
  limit: { rate: number; per: number; burst: number; wait: number; shared: boolean },
  arrivals: Arrival[],
  pauses: Array<{ at: number; ms: number }> = [],
): Promise<{ records: Record[]; clock: VirtualClock; waiting: () => number }> {
  const clock = new VirtualClock();
  const limiter = rateLimit({
    rate: limit.rate,
    per: limit.per,
    burst: limit.burst,
    wait: limit.wait,
    store: limit.shared ? new MemoryRateLimitStore() : undefined,
    clock,
  });
  const records: Record[] = arrivals.map((arrival) => ({ arrival, launchedAt: NaN }));
  for (const p of pauses) clock.setTimeout(() => limiter.pause(p.ms), p.at);
  const settled: Promise<unknown>[] = [];
  for (const r of records) {
    clock.setTimeout(() => {
      r.launchedAt = clock.now();
      const controller = r.arrival.abortAfter === undefined ? undefined : new AbortController();
      if (controller !== undefined)
        clock.setTimeout(() => controller.abort(new Error('left')), r.arrival.abortAfter!);
      const call = limiter.execute(
        () => {
          r.startedAt = clock.now();
        },
        { budget: r.arrival.budget, signal: controller?.signal },
      );
      settled.push(
        call.then(
          () => (r.outcome = 'ok'),
          (error: unknown) => {
            if (error instanceof RateLimitError) {
              if (!(error.retryAfterMs > 0)) throw new Error(`retryAfterMs ${error.retryAfterMs}`);
              r.outcome = 'limited';
            } else if (error instanceof TimeoutError) r.outcome = 'timeout';
            else if ((error as Error).message === 'left') r.outcome = 'aborted';
            else throw error;
          },
        ),
      );
    }, r.arrival.at);
  }
  await clock.runAll();
  await Promise.all(settled);
  return { records, clock, waiting: () => limiter.waiting };
}

describe('rateLimit properties', () => {
  it('admits at most rate × window + burst in any window, and no wait passes wait or the deadline (pauses included)', async () => {
    await fc.assert(
      fc.asyncProperty(
        limitArb,
        fc.array(arrivalArb, { maxLength: 40 }),
        fc.array(
          fc.record({
            at: fc.integer({ min: 0, max: 1500 }),
            ms: fc.integer({ min: 1, max: 400 }),
          }),
          { maxLength: 2 },
        ),
        async (limit, arrivals, pauses) => {
          const { records, clock, waiting } = await simulate(limit, arrivals, pauses);
          const interval = limit.per / limit.rate;
          for (const r of records) {
            expect(r.outcome).toBeDefined();
            if (r.startedAt === undefined) continue;
            const waited = r.startedAt - r.launchedAt;
            expect(waited).toBeGreaterThanOrEqual(0);
            expect(waited).toBeLessThanOrEqual(limit.wait + 1e-6);
            if (r.arrival.budget !== undefined) expect(waited).toBeLessThan(r.arrival.budget);
          }
          const starts = records
            .map((r) => r.startedAt)
            .filter((t): t is number => t !== undefined)
            .sort((a, b) => a - b);
          for (const window of [interval, limit.per, 2 * limit.per, 3.5 * interval]) {
            const bound = Math.ceil(window / interval + limit.burst - 1e-9);
            for (let i = 0; i < starts.length; i++) {
              let count = 0;
              for (let j = i; j < starts.length && starts[j]! < starts[i]! + window - 1e-6; j++)
                count++;
              expect(count).toBeLessThanOrEqual(bound);
            }
          }
          expect(waiting()).toBe(0);
          expect(clock.pending).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
    expect(unhandled()).toEqual([]);
  });

  it('a waiter that aborts frees its slot: every call that starts takes the earliest slot the others left', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          rate: fc.integer({ min: 1, max: 20 }),
          per: fc.constantFrom(100, 1000),
          burst: fc.integer({ min: 0, max: 3 }),
        }),
        fc.array(
          fc.record({
            at: fc.integer({ min: 0, max: 300 }),
            budget: fc.constant(undefined),
            abortAfter: fc.option(fc.integer({ min: 0, max: 600 }), { nil: undefined }),
          }),
          { maxLength: 25 },
        ),
        async (limit, arrivals) => {
          const { records } = await simulate({ ...limit, wait: Infinity, shared: false }, arrivals);
          // Replay the calls that started, in arrival order (FIFO), through a fresh GCRA:
          // each must start exactly at its earliest slot, so no aborted call left a hole.
          const started = records
            .filter((r) => r.startedAt !== undefined)
            .sort((a, b) => a.launchedAt - b.launchedAt || a.startedAt! - b.startedAt!);
          const gcra = new GcraState();
          const l = gcraLimit(limit.rate, limit.per, limit.burst);
          let last = -Infinity;
          for (const r of started) {
            const arrival = Math.max(r.launchedAt, last);
            const earliest = arrival + Math.max(0, gcra.waitAt(arrival, l));
            expect(r.startedAt).toBeCloseTo(earliest, 6);
            gcra.reserve(r.startedAt!, l);
            last = r.startedAt!;
          }
          for (const r of records) {
            if (r.outcome === 'aborted') expect(r.startedAt).toBeUndefined();
            else expect(r.outcome).toBe('ok');
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
