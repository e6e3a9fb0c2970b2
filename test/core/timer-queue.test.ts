import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TimerQueue, type TimedWaiter } from '../../src/core/timer-queue.js';
import { VirtualClock } from '../../src/testing/index.js';

class W implements TimedWaiter {
  timerPrev: TimedWaiter | undefined;
  timerNext: TimedWaiter | undefined;
  expiresAt = Infinity;
  constructor(readonly id: number) {}
}

describe('TimerQueue', () => {
  it('expires waiters in arrival order, each timeoutMs after it was pushed', async () => {
    const clock = new VirtualClock();
    const expired: [number, number][] = [];
    const q = new TimerQueue<W>(100, (w) => expired.push([w.id, clock.now()]));
    q.push(new W(1), clock);
    await clock.advance(30);
    q.push(new W(2), clock);
    expect(clock.pending).toBe(1);
    await clock.advance(200);
    expect(expired).toEqual([
      [1, 100],
      [2, 130],
    ]);
    expect(q.size).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('removes a waiter in O(1) without expiring it, and clears the timer when empty', async () => {
    const clock = new VirtualClock();
    const expired: number[] = [];
    const q = new TimerQueue<W>(50, (w) => expired.push(w.id));
    const a = new W(1);
    const b = new W(2);
    q.push(a, clock);
    q.push(b, clock);
    expect(q.remove(a)).toBe(true);
    expect(q.remove(a)).toBe(false);
    expect(q.has(b)).toBe(true);
    expect(q.remove(b)).toBe(true);
    expect(clock.pending).toBe(0);
    await clock.advance(100);
    expect(expired).toEqual([]);
  });

  it('arms no second timer when an expiry callback pushes a new waiter', async () => {
    const clock = new VirtualClock();
    const expired: number[] = [];
    const q: TimerQueue<W> = new TimerQueue<W>(10, (w) => {
      expired.push(w.id);
      if (w.id < 3) q.push(new W(w.id + 1), clock);
    });
    q.push(new W(1), clock);
    await clock.advance(10);
    expect(clock.pending).toBe(1);
    await clock.advance(100);
    expect(expired).toEqual([1, 2, 3]);
    expect(clock.pending).toBe(0);
  });

  it('settles every waiter exactly once: by expiry in order, or by removal (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('push' as const) }),
            fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }),
            fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 40 }) }),
          ),
          { maxLength: 60 },
        ),
        fc.integer({ min: 1, max: 30 }),
        async (ops, timeoutMs) => {
          const clock = new VirtualClock();
          const settled = new Map<number, string>();
          const expiredOrder: number[] = [];
          const q = new TimerQueue<W>(timeoutMs, (w) => {
            expect(settled.has(w.id)).toBe(false);
            expect(clock.now()).toBeGreaterThanOrEqual(w.expiresAt);
            settled.set(w.id, 'expired');
            expiredOrder.push(w.id);
          });
          const waiting: W[] = [];
          let next = 0;
          for (const o of ops) {
            if (o.op === 'push') {
              const w = new W(next++);
              q.push(w, clock);
              waiting.push(w);
            } else if (o.op === 'remove') {
              const live = waiting.filter((w) => !settled.has(w.id));
              if (live.length === 0) continue;
              const w = live[o.pick % live.length]!;
              expect(q.remove(w)).toBe(true);
              settled.set(w.id, 'removed');
            } else await clock.advance(o.ms);
            expect(q.size).toBe(waiting.filter((w) => !settled.has(w.id)).length);
            expect(clock.pending).toBeLessThanOrEqual(1);
          }
          await clock.advance(timeoutMs);
          expect(settled.size).toBe(next);
          expect(q.size).toBe(0);
          expect(clock.pending).toBe(0);
          // Expiry order is arrival order.
          expect([...expiredOrder].sort((x, y) => x - y)).toEqual(expiredOrder);
        },
      ),
      { numRuns: 200 },
    );
  });
});
