import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Context } from '../../src/index.js';
import { hedge } from '../../src/policies/hedge.js';
import { VirtualClock } from '../../src/testing/index.js';
import { collectUnhandledRejections, drive } from '../support/async.js';

const unhandled = collectUnhandledRejections();

/** The message of the error a call settled with (`undefined` if it succeeded). */
function messageOf(settled: { value: unknown } | { error: unknown } | undefined): unknown {
  return settled !== undefined && 'error' in settled ? (settled.error as Error).message : undefined;
}

describe('hedge properties', () => {
  it('settles with the first success (or the first non-retryable failure, or the last failure), aborts every loser, starts at most 1 + maxHedges attempts, never starts one after a non-retryable failure, and leaves no unhandled rejection or timer', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 3 }),
        // Attempt i answers, fails retryably (a 503), or fails for good (a 400).
        fc.array(fc.constantFrom('ok', 'retryable', 'fatal'), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 12 }),
        async (s, delay, maxHedges, fails, tickCount) => {
          const clock = new VirtualClock();
          const policy = hedge({ delay, maxHedges, clock });
          const seen: Context[] = [];
          const finished: number[] = [];
          let fatalAt = -1; // attempts started when the first non-retryable failure happened
          let settledWith: { value: unknown } | { error: unknown } | undefined;
          let finishedAtSettle = -1;
          const fn = (ctx: Context) => {
            const i = seen.length;
            seen.push(ctx);
            // Ignores its signal on purpose: a loser's late outcome must still be absorbed.
            return s.schedule(Promise.resolve(), `attempt ${i}`).then(() => {
              finished.push(i);
              if (fails[i] === 'ok') return `value ${i}`;
              if (fails[i] === 'fatal' && fatalAt === -1) fatalAt = seen.length;
              throw Object.assign(new Error(`fail ${i}`), {
                status: fails[i] === 'fatal' ? 400 : 503,
              });
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
          // A non-retryable failure ends the call: no attempt starts after it.
          if (fatalAt !== -1) expect(seen.length).toBe(fatalAt);
          const decisive = before.find((i) => fails[i] !== 'retryable');
          if (decisive !== undefined && fails[decisive] === 'fatal') {
            expect(messageOf(settledWith)).toBe(`fail ${decisive}`);
            expect(before[before.length - 1]).toBe(decisive);
            seen.forEach((ctx, i) => {
              expect(ctx.signal.aborted, `attempt ${i}`).toBe(!before.includes(i));
            });
          } else if (decisive !== undefined) {
            const winner = decisive;
            expect(settledWith).toEqual({ value: `value ${winner}` });
            // The winner is the only success that finished before the call settled.
            expect(before.filter((i) => fails[i] === 'ok')).toEqual([winner]);
            seen.forEach((ctx, i) => {
              const runningAtWin = !before.includes(i);
              expect(ctx.signal.aborted, `attempt ${i}`).toBe(runningAtWin);
              if (runningAtWin) expect((ctx.signal.reason as DOMException).name).toBe('AbortError');
            });
          } else {
            // Every attempt failed retryably, each failure starting the next hedge: all hedges were used.
            expect(seen.length).toBe(1 + maxHedges);
            expect(before).toHaveLength(seen.length);
            expect(messageOf(settledWith)).toBe(`fail ${before[before.length - 1]}`);
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
