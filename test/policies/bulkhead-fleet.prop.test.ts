import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BulkheadRejectedError,
  TimeoutError,
  bulkhead,
  type ConcurrencyGrant,
  type ConcurrencyStore,
} from '../../src/index.js';
import { VirtualClock } from '../../src/testing/index.js';
import { collectUnhandledRejections, drive } from '../support/async.js';

const unhandled = collectUnhandledRejections();

/**
 * A concurrency store shared by several bulkheads (standing for processes), answering each
 * acquire when the scheduler says: the races between a reply, an abort and a release are
 * the ones a real store over the network has.
 */
class ScheduledStore implements ConcurrencyStore {
  readonly name = 'ScheduledStore';
  readonly live = new Set<object>();
  mostHeld = 0;
  badReleases = 0;
  constructor(private readonly s: fc.Scheduler) {}

  acquire(_key: string, max: number): Promise<ConcurrencyGrant> {
    return this.s.schedule(Promise.resolve(), 'acquire').then(() => {
      if (this.live.size >= max) return { ok: false, holders: this.live.size };
      const lease = {};
      this.live.add(lease);
      this.mostHeld = Math.max(this.mostHeld, this.live.size);
      return { ok: true, holders: this.live.size, lease };
    });
  }

  release(_key: string, grant: ConcurrencyGrant): void {
    if (!this.live.delete(grant.lease as object)) this.badReleases++;
  }
}

describe('bulkhead with a store', () => {
  it('never runs more than maxConcurrent across processes, and every lease taken is released once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 1, max: 3 }),
        fc.array(
          fc.record({
            process: fc.integer({ min: 0, max: 2 }),
            callerAbort: fc.boolean(),
            budget: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
            fails: fc.boolean(),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        fc.integer({ min: 0, max: 6 }),
        async (s, maxConcurrent, calls, tickCount) => {
          const clock = new VirtualClock();
          const store = new ScheduledStore(s);
          const processes = [0, 1, 2].map(() =>
            bulkhead({ name: 'shared', maxConcurrent, maxQueue: 2, store, clock }),
          );
          let running = 0;
          let most = 0;
          const outcomes: unknown[] = [];
          const ticks = { due: 0 };
          calls.forEach((call, i) => {
            const controller = call.callerAbort ? new AbortController() : undefined;
            void s.schedule(Promise.resolve(), `start ${i}`).then(() => {
              processes[call.process]!.execute(
                () => {
                  running++;
                  most = Math.max(most, running);
                  return s.schedule(Promise.resolve(i), `finish ${i}`).finally(() => {
                    running--;
                    if (call.fails) throw new Error(`fail ${i}`);
                  });
                },
                { signal: controller?.signal, budget: call.budget },
              ).then(
                (v) => outcomes.push(v),
                (e: unknown) => outcomes.push(e),
              );
            });
            if (controller !== undefined)
              void s
                .schedule(Promise.resolve(), `abort ${i}`)
                .then(() => controller.abort(new Error(`abort ${i}`)));
          });
          for (let k = 0; k < tickCount; k++)
            void s.schedule(Promise.resolve(), 'tick').then(() => ticks.due++);
          await drive(s, clock, ticks);

          expect(most).toBeLessThanOrEqual(maxConcurrent);
          expect(store.mostHeld).toBeLessThanOrEqual(maxConcurrent);
          expect(outcomes.length).toBe(calls.length);
          for (const o of outcomes) {
            const known =
              typeof o === 'number' ||
              o instanceof BulkheadRejectedError ||
              o instanceof TimeoutError ||
              (o instanceof Error && /^(fail|abort) \d+$/.test(o.message));
            expect(known).toBe(true);
          }
          expect(store.live.size).toBe(0);
          expect(store.badReleases).toBe(0);
          for (const p of processes) expect(p.inFlight).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
    expect(unhandled()).toEqual([]);
  });
});
