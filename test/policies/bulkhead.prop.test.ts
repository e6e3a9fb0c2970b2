import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BulkheadRejectedError, TimeoutError } from '../../src/index.js';
import { bulkhead } from '../../src/policies/bulkhead.js';
import { VirtualClock } from '../../src/testing/index.js';
import { collectUnhandledRejections, drive } from '../support/async.js';

const unhandled = collectUnhandledRejections();

interface Plan {
  /** How fn ends once started: after a scheduled step, or only when its signal aborts. */
  ends: 'resolve' | 'reject' | 'throw-sync' | 'hang-until-abort';
  /** The caller aborts through an AbortController at a scheduled moment. */
  callerAbort: boolean;
  budget: number | undefined;
}

const planArb: fc.Arbitrary<Plan> = fc
  .record({
    ends: fc.constantFrom(
      'resolve' as const,
      'reject' as const,
      'throw-sync' as const,
      'hang-until-abort' as const,
    ),
    callerAbort: fc.boolean(),
    budget: fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined }),
  })
  // A call that hangs must have some way to end, or its slot is (rightly) held forever.
  .map((p) =>
    p.ends === 'hang-until-abort' && !p.callerAbort && p.budget === undefined
      ? { ...p, budget: 30 }
      : p,
  );

describe('bulkhead properties', () => {
  it('never runs more than maxConcurrent, never queues more than maxQueue, and never leaks a slot', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        fc.option(fc.integer({ min: 0, max: 50 }), { nil: undefined }),
        fc.array(planArb, { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 0, max: 8 }),
        async (s, maxConcurrent, maxQueue, queueTimeout, plans, tickCount) => {
          const clock = new VirtualClock();
          const b = bulkhead({
            maxConcurrent,
            maxQueue,
            queueTimeout: queueTimeout ?? Infinity,
            clock,
          });
          const violations: string[] = [];
          let running = 0;
          let waiting = 0; // calls neither started nor settled: an upper bound for b.queued
          const check = (where: string) => {
            if (b.queued > waiting)
              violations.push(`${where}: queued ${b.queued} but only ${waiting} waiting`);
            if (running > maxConcurrent) violations.push(`${where}: ${running} running`);
            if (b.inFlight > maxConcurrent) violations.push(`${where}: inFlight ${b.inFlight}`);
            if (b.queued > maxQueue) violations.push(`${where}: queued ${b.queued}`);
            if (running > b.inFlight)
              violations.push(`${where}: ${running} running but inFlight ${b.inFlight}`);
          };
          const PENDING = Symbol('pending');
          const outcomes: unknown[] = plans.map(() => PENDING);
          const ticks = { due: 0 };

          plans.forEach((plan, i) => {
            const controller = plan.callerAbort ? new AbortController() : undefined;
            const fn = (ctx: { signal: AbortSignal }): Promise<number> | number => {
              running++;
              waiting--;
              if (outcomes[i] !== PENDING)
                violations.push(`fn ${i} started after its call settled`);
              check(`start ${i}`);
              if (plan.ends === 'throw-sync') {
                running--;
                throw new Error(`sync ${i}`);
              }
              const done =
                plan.ends === 'hang-until-abort'
                  ? new Promise<number>((_, reject) => {
                      const signal = ctx.signal;
                      if (signal.aborted) reject(signal.reason);
                      else
                        signal.addEventListener('abort', () => reject(signal.reason), {
                          once: true,
                        });
                    })
                  : s.schedule(Promise.resolve(i), `finish ${i}`).then((v) => {
                      if (plan.ends === 'reject') throw new Error(`fail ${i}`);
                      return v;
                    });
              return done.finally(() => {
                running--;
                check(`end ${i}`);
              });
            };
            void s.schedule(Promise.resolve(), `start ${i}`).then(() => {
              let started = false;
              waiting++;
              const call = b.execute(
                (ctx) => {
                  started = true;
                  return fn(ctx);
                },
                { signal: controller?.signal, budget: plan.budget },
              );
              check(`after start ${i}`);
              const settle = (o: unknown) => {
                if (!started) waiting--;
                outcomes[i] = o;
                check(`settled ${i}`);
              };
              call.then(settle, settle);
            });
            if (controller !== undefined) {
              void s
                .schedule(Promise.resolve(), `abort ${i}`)
                .then(() => controller.abort(new Error(`abort ${i}`)));
            }
          });
          for (let k = 0; k < tickCount; k++)
            void s.schedule(Promise.resolve(), 'tick').then(() => ticks.due++);

          await drive(s, clock, ticks);

          expect(violations).toEqual([]);
          expect(running).toBe(0);
          expect(b.inFlight).toBe(0);
          expect(b.queued).toBe(0);
          outcomes.forEach((o, i) => {
            expect(o).not.toBe(PENDING);
            const known =
              o === i ||
              o instanceof BulkheadRejectedError ||
              o instanceof TimeoutError ||
              (o instanceof Error && /^(sync|fail|abort) \d+$/.test(o.message));
            expect(known, `call ${i} ended with ${String(o)}`).toBe(true);
          });
          if (queueTimeout === undefined) {
            expect(
              outcomes.some(
                (o) => o instanceof BulkheadRejectedError && o.reason === 'queue-timeout',
              ),
            ).toBe(false);
          }
          expect(unhandled()).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('starts queued calls in arrival order whatever order running calls finish in', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 10 }),
        async (s, maxConcurrent, calls) => {
          const b = bulkhead({ maxConcurrent, maxQueue: calls });
          const started: number[] = [];
          const all = Array.from({ length: calls }, (_, i) =>
            b.execute(() => {
              started.push(i);
              return s.schedule(Promise.resolve(i), `finish ${i}`);
            }),
          );
          await s.waitFor(Promise.all(all));
          expect(started).toEqual(Array.from({ length: calls }, (_, i) => i));
          expect(b.inFlight + b.queued).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });
});
