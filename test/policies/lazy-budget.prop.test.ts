import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  budget,
  bulkhead,
  circuitBreaker,
  pipeline,
  retry,
  timeout,
  TimeoutError,
} from '../../src/index.js';
import { deadlineTimersOf } from '../../src/core/deadline-timers.js';
import { VirtualClock } from '../../src/testing/index.js';
import { collectUnhandledRejections, endingOf } from '../support/async.js';
import { passThrough } from '../support/pass-through.js';

const unhandled = collectUnhandledRejections();
const never = () => new Promise<never>(() => {});
const fail503 = () => Object.assign(new Error('503'), { status: 503 });

describe('a budget over attempts bounded by an inner timeout (armed lazily)', () => {
  it('arms only the attempt deadline while the attempt runs', async () => {
    const clock = new VirtualClock();
    const p = pipeline(budget(1000, { clock }), retry(), timeout(100));
    const timers = deadlineTimersOf(clock);
    let inside = -1;
    await p.execute(() => {
      inside = timers.size;
      return 1;
    });
    expect(inside).toBe(1);
    expect(timers.size).toBe(0);
  });

  it('still fires for an attempt after a backoff sleep, when the budget ends before its timeout', async () => {
    const clock = new VirtualClock();
    const p = pipeline(
      budget(250, { clock }),
      retry({ maxAttempts: 5, backoff: 200, minAttemptTime: 0 }),
      timeout(100),
    );
    let attempts = 0;
    // The second attempt (at 200, timeout due at 300) hangs and ignores its signal.
    const outcome = p
      .execute(() => (++attempts === 1 ? Promise.reject(fail503()) : never()))
      .catch((e: unknown) => e);
    await clock.advance(250);
    const error = (await outcome) as TimeoutError;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.scope).toBe('budget');
    expect(clock.now()).toBe(250);
    expect(deadlineTimersOf(clock).size).toBe(0);
  });

  it('armed by a backoff sleep, leaves the timers once the call settles', async () => {
    const clock = new VirtualClock();
    const p = pipeline(
      budget(1000, { clock }),
      retry({ maxAttempts: 2, backoff: 10, minAttemptTime: 0 }),
      timeout(100),
    );
    const timers = deadlineTimersOf(clock);
    let attempts = 0;
    let during = -1;
    const call = p.execute(() => {
      if (++attempts === 1) return Promise.reject(fail503());
      during = timers.size; // the budget (armed for the sleep) and this attempt
      return 'ok';
    });
    await clock.advance(10);
    expect(await call).toBe('ok');
    expect(during).toBe(2);
    await Promise.resolve();
    expect(timers.size).toBe(0);
  });

  it('still fires while the call waits in a bulkhead queue', async () => {
    const clock = new VirtualClock();
    const bh = bulkhead({ maxConcurrent: 1, maxQueue: 5 });
    const p = pipeline(budget(300, { clock }), retry(), bh, timeout(100));
    const blocker = pipeline(bh).execute(never); // holds the only slot forever
    void blocker;
    let settledAt = -1;
    const outcome = p
      .execute(() => 1)
      .catch((e: unknown) => e)
      .finally(() => (settledAt = clock.now()));
    await clock.advance(300);
    expect(settledAt).toBe(300); // checked before awaiting: a missed deadline fails, not hangs
    expect(await outcome).toBeInstanceOf(TimeoutError);
    expect(bh.queued).toBe(0);
  });

  it('property: settles as the same pipeline does with its budget guarded (and each step reading the clock itself)', async () => {
    // A plain step between retry and timeout: the budget is then guarded as usual and no
    // step hands its clock reading on.
    const plain = passThrough;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1000 }), // budget
        fc.integer({ min: 1, max: 400 }), // attempt timeout
        fc.integer({ min: 1, max: 4 }), // maxAttempts
        fc.integer({ min: 0, max: 300 }), // backoff
        fc.array(fc.option(fc.integer({ min: 0, max: 500 }), { nil: undefined }), {
          minLength: 1,
          maxLength: 4,
        }), // latency per attempt, undefined: hangs and ignores its signal
        fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }), // attempt fails (retryable)
        async (budgetMs, attemptMs, maxAttempts, backoff, latencies, fails) => {
          const run = async (lazy: boolean) => {
            const clock = new VirtualClock({ start: 1_000 });
            const parts = [
              budget(budgetMs, { clock }),
              retry({ maxAttempts, backoff, minAttemptTime: 0 }),
            ];
            const p = pipeline(...parts, ...(lazy ? [] : [plain]), timeout(attemptMs));
            const seen: Array<[number, number]> = [];
            let n = 0;
            const outcome = p.execute((ctx) => {
              const i = n++;
              seen.push([ctx.attempt, ctx.deadline]);
              const latency = latencies[i % latencies.length];
              if (latency === undefined) return never();
              return clock.sleep(latency).then(() => {
                if (fails[i % fails.length]) throw fail503();
                return 'ok';
              });
            });
            const ending = endingOf(outcome, clock);
            await clock.runAll();
            expect(deadlineTimersOf(clock).size).toBe(0);
            return { ending: await ending, seen };
          };
          expect(await run(true)).toEqual(await run(false));
        },
      ),
      { numRuns: 200 },
    );
    await new Promise((r) => setImmediate(r));
    expect(unhandled()).toEqual([]);
  });

  it('property: every call settles by its budget, whatever the attempts, sleeps and queue waits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2000 }), // budget
        fc.integer({ min: 1, max: 600 }), // attempt timeout
        fc.integer({ min: 1, max: 6 }), // maxAttempts
        fc.integer({ min: 0, max: 700 }), // backoff
        fc.array(fc.option(fc.integer({ min: 0, max: 900 }), { nil: undefined }), {
          minLength: 1,
          maxLength: 6,
        }), // latency per call, undefined: hangs and ignores its signal
        fc.boolean(), // fails (retryable) rather than succeeds
        fc.integer({ min: 1, max: 3 }), // bulkhead slots
        fc.integer({ min: 0, max: 1500 }), // the blocker holds a slot this long
        async (budgetMs, attemptMs, maxAttempts, backoff, latencies, fails, slots, holdMs) => {
          const clock = new VirtualClock({ start: 5_000 });
          const bh = bulkhead({ maxConcurrent: slots, maxQueue: 100 });
          const p = pipeline(
            budget(budgetMs, { clock }),
            retry({ maxAttempts, backoff, minAttemptTime: 0 }),
            circuitBreaker({ consecutiveFailures: 1000 }),
            bh,
            timeout(attemptMs),
          );
          // Other work holding the slots makes the calls queue.
          const blockers = Array.from({ length: slots }, () =>
            pipeline(bh).execute(() => clock.sleep(holdMs)),
          );
          const start = clock.now();
          const settled: number[] = [];
          let n = 0;
          const calls = latencies.map(() =>
            p
              .execute(async () => {
                const latency = latencies[n++ % latencies.length];
                if (latency === undefined) return never();
                await clock.sleep(latency);
                if (fails) throw fail503();
                return 'ok';
              })
              .then(
                (v) => v,
                (e: unknown) => e,
              )
              .finally(() => settled.push(clock.now())),
          );
          await clock.runAll();
          const outcomes = await Promise.all(calls);
          await Promise.all(blockers);
          expect(settled).toHaveLength(latencies.length);
          for (const at of settled) expect(at).toBeLessThanOrEqual(start + budgetMs);
          for (const o of outcomes)
            expect(o === 'ok' || o instanceof TimeoutError || (o as Error).message === '503').toBe(
              true,
            );
          expect(deadlineTimersOf(clock).size).toBe(0);
          expect(bh.inFlight).toBe(0);
          expect(bh.queued).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
    await new Promise((r) => setImmediate(r));
    expect(unhandled()).toEqual([]);
  });
});
