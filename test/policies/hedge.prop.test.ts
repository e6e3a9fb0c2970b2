import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/index.js';
import { hedge } from '../../src/policies/hedge.js';
import { VirtualClock } from '../../src/testing/index.js';
import { collectUnhandledRejections, drive } from '../support/async.js';

const unhandled = collectUnhandledRejections();

describe('hedge properties', () => {
  it('settles with the first success (or the last failure), aborts every loser, starts at most 1 + maxHedges attempts, and leaves no unhandled rejection or timer', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), // attempt i fails?
        fc.integer({ min: 0, max: 12 }),
        async (s, delay, maxHedges, fails, tickCount) => {
          const clock = new VirtualClock();
          const policy = hedge({ delay, maxHedges, clock });
          const seen: Context[] = [];
          const finished: number[] = [];
          let settledWith: { value: unknown } | { error: unknown } | undefined;
          let finishedAtSettle = -1;
          const fn = (ctx: Context) => {
            const i = seen.length;
            seen.push(ctx);
            // Ignores its signal on purpose: a loser's late outcome must still be absorbed.
            return s.schedule(Promise.resolve(), `attempt ${i}`).then(() => {
              finished.push(i);
              if (fails[i]) throw new Error(`fail ${i}`);
              return `value ${i}`;
            });
          };
          const ticks = { due: 0 };
          for (let k = 0; k < tickCount; k++)
            void s.schedule(Promise.resolve(), 'tick').then(() => ticks.due++);
          void policy.execute(fn).then(
            (value) => {
              settledWith = { value };
              finishedAtSettle = finished.length;
            },
            (error: unknown) => {
              settledWith = { error };
              finishedAtSettle = finished.length;
            },
          );

          await drive(s, clock, ticks);

          expect(settledWith).toBeDefined();
          expect(seen.length).toBeGreaterThanOrEqual(1);
          expect(seen.length).toBeLessThanOrEqual(1 + maxHedges);
          const before = finished.slice(0, finishedAtSettle);
          const winner = before.find((i) => !fails[i]);
          if (winner !== undefined) {
            expect(settledWith).toEqual({ value: `value ${winner}` });
            // The winner is the only success that finished before the call settled.
            expect(before.filter((i) => !fails[i])).toEqual([winner]);
            seen.forEach((ctx, i) => {
              const runningAtWin = !before.includes(i);
              expect(ctx.signal.aborted, `attempt ${i}`).toBe(runningAtWin);
              if (runningAtWin) expect((ctx.signal.reason as DOMException).name).toBe('AbortError');
            });
          } else {
            // Every attempt failed, each failure starting the next hedge: all hedges were used.
            expect(seen.length).toBe(1 + maxHedges);
            expect(before).toHaveLength(seen.length);
            expect(settledWith).toEqual({ error: new Error(`fail ${before[before.length - 1]}`) });
          }
          expect(new Set(seen.map((c) => c.idempotencyKey)).size).toBe(1);
          expect(clock.pending).toBe(0);
          expect(unhandled()).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });
});
