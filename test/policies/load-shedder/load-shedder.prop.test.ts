import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Priority } from '../../../src/core/context.js';
import { LoadShedError } from '../../../src/policies/load-shedder/errors.js';
import { adaptive } from '../../../src/policies/load-shedder/limits/adaptive.js';
import {
  loadShedder,
  type LoadShedderQueueOptions,
} from '../../../src/policies/load-shedder/load-shedder.js';
import { VirtualClock } from '../../../src/testing/index.js';
import { collectUnhandledRejections, drive } from '../../support/async.js';

const unhandled = collectUnhandledRejections();

const PRIORITIES: readonly Priority[] = ['critical', 'high', 'normal', 'low'];

interface Arrival {
  priority: Priority;
  fails: boolean;
  budget: number | undefined;
}

const arrivalArb: fc.Arbitrary<Arrival> = fc.record({
  priority: fc.constantFrom(...PRIORITIES),
  fails: fc.boolean(),
  budget: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
});

const sharesArb = fc.option(
  fc.record(
    {
      low: fc.double({ min: 0.05, max: 1, noNaN: true }),
      normal: fc.double({ min: 0.05, max: 1, noNaN: true }),
      high: fc.double({ min: 0.05, max: 1, noNaN: true }),
    },
    { requiredKeys: [] },
  ),
  { nil: undefined },
);

const queueArb: fc.Arbitrary<LoadShedderQueueOptions | undefined> = fc.option(
  fc.record({
    maxSize: fc.integer({ min: 0, max: 4 }),
    timeout: fc.integer({ min: 1, max: 50 }),
    overloadTimeout: fc.integer({ min: 0, max: 10 }),
    interval: fc.integer({ min: 1, max: 30 }),
    lifo: fc.boolean(),
  }),
  { nil: undefined },
);

/** A fixed limit, or an adaptive one that moves as calls finish. */
const limitArb = fc.oneof(
  fc.integer({ min: 1, max: 8 }).map((n) => ({ make: () => n })),
  fc
    .record({
      algorithm: fc.constantFrom('gradient' as const, 'aimd' as const, 'vegas' as const),
      initial: fc.integer({ min: 1, max: 6 }),
    })
    .map(({ algorithm, initial }) => ({
      make: () => adaptive({ algorithm, min: 1, max: 8, initial }),
    })),
);

describe('loadShedder properties', () => {
  it('admits no priority beyond its share of the limit, admits critical work whenever inFlight < limit, and leaks nothing, under any arrival order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        limitArb,
        sharesArb,
        queueArb,
        fc.array(arrivalArb, { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 0, max: 10 }),
        async (s, limitSpec, shares, queue, arrivals, tickCount) => {
          const clock = new VirtualClock();
          const shedder = loadShedder({
            limit: limitSpec.make(),
            priorityShares: shares,
            queue,
            clock,
          });
          const share = (p: Priority) => shedder.priorityShares[p];
          const violations: string[] = [];
          const ticks = { due: 0 };
          const done: Promise<unknown>[] = [];

          for (let t = 0; t < tickCount; t++)
            done.push(s.schedule(Promise.resolve(), 'tick').then(() => void ticks.due++));

          arrivals.forEach((a, i) => {
            done.push(
              s.schedule(Promise.resolve(), `arrive #${i} ${a.priority}`).then(() => {
                const before = shedder.inFlight;
                const limit = shedder.limit;
                let ranNow = false;
                let synchronous = true;
                const call = shedder.execute(
                  () => {
                    ranNow = synchronous;
                    // At admission: the count before this call took its slot, and the limit in force.
                    const others = shedder.inFlight - 1;
                    const lim = shedder.limit;
                    if (others >= share(a.priority) * lim) {
                      violations.push(
                        `#${i} ${a.priority} admitted with ${others} in flight, share ${share(a.priority)} of ${lim}`,
                      );
                    }
                    // The documented rule is stricter: with this call, the share is not exceeded (unless idle).
                    if (others > 0 && others + 1 > share(a.priority) * lim) {
                      violations.push(
                        `#${i} ${a.priority} fills ${others + 1} > ${share(a.priority)} × ${lim}`,
                      );
                    }
                    if (others >= lim)
                      violations.push(`#${i} admitted beyond the limit: ${others} ≥ ${lim}`);
                    return s.schedule(Promise.resolve(), `finish #${i}`).then(() => {
                      if (a.fails) throw new Error(`fail #${i}`);
                      return i;
                    });
                  },
                  { priority: a.priority, budget: a.budget },
                );
                synchronous = false;
                if (a.priority === 'critical' && before < limit && !ranNow) {
                  violations.push(
                    `critical #${i} not admitted with ${before} in flight under limit ${limit}`,
                  );
                }
                return call.catch((error: unknown) => {
                  if (
                    error instanceof LoadShedError &&
                    a.priority === 'critical' &&
                    error.reason === 'priority'
                  ) {
                    violations.push(`critical #${i} shed for priority`);
                  }
                });
              }),
            );
          });

          await drive(s, clock, ticks, 7);
          await Promise.all(done);
          expect(violations).toEqual([]);
          expect(shedder.inFlight).toBe(0);
          expect(shedder.queued).toBe(0);
          expect(clock.pending).toBe(0);
          expect(unhandled()).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('never holds more waiters than queue.maxSize and sheds only what it must', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.constantFrom(...PRIORITIES), { minLength: 1, maxLength: 15 }),
        async (s, limit, maxSize, priorities) => {
          const clock = new VirtualClock();
          const shedder = loadShedder({ limit, queue: { maxSize, timeout: Infinity }, clock });
          const violations: string[] = [];
          const done: Promise<unknown>[] = [];
          priorities.forEach((priority, i) => {
            done.push(
              s.schedule(Promise.resolve(), `arrive #${i}`).then(() => {
                const queuedBefore = shedder.queued;
                const call = shedder.execute(() => s.schedule(Promise.resolve(i), `finish #${i}`), {
                  priority,
                });
                if (shedder.queued > maxSize)
                  violations.push(`queued ${shedder.queued} > ${maxSize}`);
                return call.catch((error: unknown) => {
                  // Without timeouts, a call is refused only when the queue was already full.
                  if (
                    error instanceof LoadShedError &&
                    error.reason !== 'priority' &&
                    queuedBefore < maxSize
                  ) {
                    violations.push(`#${i} shed (${error.reason}) with ${queuedBefore} queued`);
                  }
                });
              }),
            );
          });
          await drive(s, clock, { due: 0 }, 7);
          await Promise.all(done);
          expect(violations).toEqual([]);
          expect(shedder.inFlight).toBe(0);
          expect(shedder.queued).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });
});
