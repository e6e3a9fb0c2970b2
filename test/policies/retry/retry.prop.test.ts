import { getEventListeners, setMaxListeners } from 'node:events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { budget, pipeline, retry, retryBudget, timeout, TimeoutError } from '../../../src/index.js';
import { deadlineTimersOf } from '../../../src/core/deadline-timers.js';
import { VirtualClock } from '../../../src/testing/index.js';
import { collectUnhandledRejections } from '../../support/async.js';

const fail503 = () => Object.assign(new Error('503'), { status: 503 });

const backoffArb = fc.oneof(
  fc.integer({ min: 0, max: 2000 }),
  fc.record({
    initial: fc.integer({ min: 0, max: 500 }),
    multiplier: fc.double({ min: 1, max: 3, noNaN: true }),
    max: fc.integer({ min: 500, max: 5000 }),
    jitter: fc.constantFrom(
      'full' as const,
      'equal' as const,
      'decorrelated' as const,
      'none' as const,
    ),
  }),
);

const unhandled = collectUnhandledRejections();

describe('retry properties', () => {
  it('never sleeps past the deadline, never exceeds maxAttempts, and settles by the deadline', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5000 }), // budget
        fc.integer({ min: 1, max: 8 }), // maxAttempts
        backoffArb,
        fc.integer({ min: 1, max: 100 }), // minAttemptTime
        fc.option(fc.integer({ min: 1, max: 2000 }), { nil: undefined }), // attempt timeout
        fc.array(fc.option(fc.integer({ min: 0, max: 3000 }), { nil: undefined }), {
          minLength: 8,
          maxLength: 8,
        }), // latency per attempt, undefined = hangs
        fc.option(fc.integer({ min: 0, max: 5000 }), { nil: undefined }), // Retry-After on failures
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        async (
          budgetMs,
          maxAttempts,
          backoff,
          minAttemptTime,
          attemptTimeout,
          latencies,
          retryAfterMs,
          r,
        ) => {
          const clock = new VirtualClock({ start: 10_000 });
          const rp = retry({ maxAttempts, backoff, minAttemptTime, random: () => r });
          const policies =
            attemptTimeout === undefined
              ? [budget(budgetMs, { clock }), rp]
              : [budget(budgetMs, { clock }), rp, timeout(attemptTimeout)];
          const deadline = clock.now() + budgetMs;
          const violations: string[] = [];
          rp.on('retry', (e) => {
            if (clock.now() + e.delay + minAttemptTime > deadline)
              violations.push(`sleep ${e.delay} at ${clock.now()}`);
          });
          let attempts = 0;
          let settledAt = -1;
          const call = pipeline(...policies)
            .execute(async () => {
              const latency = latencies[attempts++ % latencies.length];
              if (latency === undefined) return new Promise<never>(() => {});
              await clock.sleep(latency);
              throw Object.assign(fail503(), retryAfterMs === undefined ? {} : { retryAfterMs });
            })
            .then(
              () => 'value',
              (e: unknown) => e,
            )
            .finally(() => (settledAt = clock.now()));
          await clock.runAll();
          const outcome = await call;
          expect(violations).toEqual([]);
          expect(attempts).toBeLessThanOrEqual(maxAttempts);
          expect(settledAt).toBeGreaterThanOrEqual(0);
          expect(settledAt).toBeLessThanOrEqual(deadline);
          expect(
            outcome instanceof TimeoutError || (outcome as { status?: number }).status === 503,
          ).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('with a failing dependency, total attempts ≤ requests × (1 + ratio) + minPerSecond × window seconds', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 300 }), // requests
        fc.double({ min: 0, max: 1, noNaN: true }), // ratio
        fc.integer({ min: 0, max: 5 }), // minPerSecond
        fc.integer({ min: 1, max: 5 }), // maxAttempts
        fc.integer({ min: 1, max: 50 }), // ms between requests
        async (requests, ratio, minPerSecond, maxAttempts, gap) => {
          const clock = new VirtualClock();
          const window = requests * gap + 1000; // the whole run fits in one window
          const shared = retryBudget({ ratio, minPerSecond, window });
          const rp = retry({ clock, maxAttempts, backoff: 0, retryBudget: shared });
          let attempts = 0;
          const calls: Promise<unknown>[] = [];
          for (let i = 0; i < requests; i++) {
            calls.push(
              rp
                .execute(() => {
                  attempts++;
                  throw fail503();
                })
                .catch(() => undefined),
            );
            await clock.advance(gap);
          }
          await clock.runAll();
          await Promise.all(calls);
          const bound = requests * (1 + ratio) + (minPerSecond * window) / 1000;
          expect(attempts).toBeLessThanOrEqual(Math.floor(bound + 1e-9));
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('call lifecycle properties', () => {
  it('every call settles exactly once, with fn’s outcome, the abort reason or a TimeoutError, and leaves nothing behind', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(
          fc.record({
            outcome: fc.constantFrom('resolve', 'reject', 'hang'),
            abort: fc.boolean(),
            budget: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
            attemptTimeout: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
            readSignal: fc.boolean(),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        async (s, specs) => {
          const clock = new VirtualClock();
          const parent = new AbortController();
          // This test links one controller per call to the parent by hand (up to 12): its
          // own listeners, not bulwark's, so it raises the warning threshold for them.
          setMaxListeners(specs.length + 1, parent.signal);
          const results: Array<{ count: number; value: unknown }> = [];
          const controllers: AbortController[] = [];
          const calls = specs.map((spec, i) => {
            const controller = new AbortController();
            controllers.push(controller);
            parent.signal.addEventListener('abort', () => controller.abort(parent.signal.reason), {
              once: true,
            });
            const record = { count: 0, value: undefined as unknown };
            results.push(record);
            const policies = [
              retry({ clock, maxAttempts: 2, backoff: 1 }),
              timeout(spec.attemptTimeout ?? Infinity),
            ];
            return pipeline(...policies)
              .execute(
                (ctx) => {
                  if (spec.readSignal) void ctx.signal;
                  if (spec.outcome === 'hang') return new Promise<never>(() => {});
                  return s.schedule(Promise.resolve(i), `call ${i}`).then((v) => {
                    if (spec.outcome === 'reject')
                      throw Object.assign(new Error(`e${i}`), { status: 400 });
                    return v;
                  });
                },
                { budget: spec.budget, signal: controller.signal },
              )
              .then(
                (v) => {
                  record.count++;
                  record.value = v;
                },
                (e: unknown) => {
                  record.count++;
                  record.value = e;
                },
              );
          });
          specs.forEach((spec, i) => {
            if (spec.abort)
              void s
                .schedule(Promise.resolve(), `abort ${i}`)
                .then(() => controllers[i]!.abort(new Error(`abort ${i}`)));
          });
          await s.waitAll();
          await clock.runAll();
          await s.waitAll();
          // Anything still hanging ends with the parent abort (a caller giving up on everything).
          parent.abort(new Error('shutdown'));
          await Promise.all(calls);
          for (const [i, r] of results.entries()) {
            expect(r.count).toBe(1);
            const v = r.value;
            const ok =
              v === i ||
              (v instanceof Error && /^(e\d+|abort \d+|shutdown)$/.test(v.message)) ||
              v instanceof TimeoutError;
            expect(ok).toBe(true);
          }
          expect(deadlineTimersOf(clock).size).toBe(0);
          for (const c of controllers) expect(getEventListeners(c.signal, 'abort')).toHaveLength(0);
          await new Promise((r) => setImmediate(r));
          expect(unhandled()).toEqual([]);
        },
      ),
      { numRuns: 100 },
    );
  });
});
