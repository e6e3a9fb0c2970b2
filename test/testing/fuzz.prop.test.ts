import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dependency, type Priority } from '../../src/index.js';
import {
  assertInvariants,
  breakerNeverCallsWhileOpen,
  bulkheadNeverExceeds,
  callsWithinBudget,
  faultyDependency,
  noUnhandledRejections,
  seededRandom,
  settlesExactlyOnce,
  trackConcurrency,
  VirtualClock,
} from '../../src/testing/index.js';
import { dependencyConfigArb, faultScheduleArb } from '../../src/testing/arbitraries-entry.js';

/** One caller: when it starts, its own budget, when (if ever) it aborts, and its priority. */
interface CallPlan {
  at: number;
  budget: number | undefined;
  abortAfter: number | undefined;
  priority: Priority;
}

const callArb: fc.Arbitrary<CallPlan> = fc.record({
  // Bursts (many calls at once) as well as calls spread over the fault schedule.
  at: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0, max: 300 }),
    fc.integer({ min: 0, max: 4_000 }),
  ),
  budget: fc.option(fc.integer({ min: 0, max: 3_000 }), { nil: undefined }),
  // About one caller in four gives up on its own.
  abortAfter: fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 3_000 }) },
  ),
  priority: fc.constantFrom<Priority>('critical', 'high', 'normal', 'low'),
});

describe('arbitraries', () => {
  it('every generated config is accepted by dependency(), and every fault schedule by faultyDependency()', () => {
    fc.assert(
      fc.property(dependencyConfigArb(), faultScheduleArb(), (config, faults) => {
        const clock = new VirtualClock();
        const dep = dependency('generated', { ...config, clock });
        expect(dep.budget).toBeLessThanOrEqual(10_000);
        expect(dep.timeout).toBeLessThanOrEqual(dep.budget);
        faultyDependency({ ...faults, clock });
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
  });
});

describe('dependency() under random faults', () => {
  it('never exceeds the bulkhead, never calls fn while open, stays within budget, settles every call once, and leaves no unhandled rejection', async () => {
    await fc.assert(
      fc.asyncProperty(
        dependencyConfigArb({ maxBudget: 3_000 }),
        faultScheduleArb({ horizon: 5_000, maxLatency: 1_000 }),
        fc.array(callArb, { minLength: 1, maxLength: 12 }),
        fc.nat(),
        async (config, faults, plans, jitterSeed) => {
          const clock = new VirtualClock();
          const downstream = faultyDependency({ ...faults, clock });
          const retry = config.retry
            ? { ...config.retry, random: seededRandom(jitterSeed) }
            : config.retry;
          const dep = dependency('fuzz', { ...config, retry, clock });

          // Hedges run inside the bulkhead: one slot may hold 1 + maxHedges attempts.
          const perSlot = 1 + (dep.hedge?.maxHedges ?? 0);
          const concurrency = dep.bulkhead
            ? bulkheadNeverExceeds(dep.bulkhead.maxConcurrent * perSlot, { clock })
            : trackConcurrency({ clock });
          const breakerCheck = dep.breaker
            ? breakerNeverCallsWhileOpen(dep.breaker, downstream.call, { clock })
            : undefined;
          const fn = concurrency.wrap(breakerCheck?.fn ?? downstream.call);
          const budgets = callsWithinBudget({ clock, tolerance: 0 });
          const settles = settlesExactlyOnce();
          const unhandled = noUnhandledRejections();

          // The dependency budget starts inside the load shedder: its queue wait comes on top.
          const shedderQueue = config.loadShedder === false ? undefined : config.loadShedder?.queue;
          const queueWait =
            shedderQueue && shedderQueue.maxSize > 0 ? Number(shedderQueue.timeout ?? 1_000) : 0;
          const outcomes: Promise<unknown>[] = [];
          try {
            for (const plan of plans) {
              clock.setTimeout(() => {
                const controller =
                  plan.abortAfter === undefined ? undefined : new AbortController();
                if (controller) clock.setTimeout(() => controller.abort(), plan.abortAfter!);
                const limit = Math.min(plan.budget ?? Infinity, dep.budget + queueWait);
                const call = budgets.track(limit, () =>
                  dep.execute(fn, {
                    ...(plan.budget === undefined ? {} : { budget: plan.budget }),
                    ...(controller ? { signal: controller.signal } : {}),
                    priority: plan.priority,
                  }),
                );
                outcomes.push(settles.track(call).catch(() => undefined));
              }, plan.at);
            }
            await clock.runAll();
            await unhandled.flush();

            // Checked before awaiting the calls: a call that never settles is reported, not awaited forever.
            expect(settles.tracked).toBe(plans.length);
            assertInvariants(
              concurrency,
              ...(breakerCheck ? [breakerCheck] : []),
              budgets,
              settles,
              unhandled,
            );
            // Every downstream call ended: answered, failed, or aborted when its call gave up.
            expect(downstream.inFlight).toBe(0);
            expect(concurrency.inFlight).toBe(0);
            await Promise.all(outcomes);
          } finally {
            breakerCheck?.dispose();
            unhandled.dispose();
          }
        },
      ),
      // FUZZ_RUNS=5000 for a longer hunt; a failure prints its seed and path to replay.
      { numRuns: Number(process.env.FUZZ_RUNS ?? 100) },
    );
  });
});
