import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dependency } from '../../src/index.js';
import { messageHandler, type Decision } from '../../src/queue.js';
import { VirtualClock } from '../../src/testing/index.js';

type Step = 'ok' | 'transient' | 'poison';

const status = (code: number) => Object.assign(new Error(`HTTP ${code}`), { status: code });

/** Virtual ms the clock moves per step while a delivery is in flight. */
const STEP = 10;

/**
 * A minimal at-least-once queue on the virtual clock: the earliest due delivery is handed
 * to the handler and its decision carried out (ack, redeliver counting or not, set aside).
 * Time goes on while a delivery runs, as it does for a real worker; `longest` is the most
 * virtual time one delivery took.
 */
async function drain(
  clock: VirtualClock,
  count: number,
  handle: (n: number, deliveries: number) => Promise<Decision>,
  whileRunning: () => void = () => {},
) {
  let longest = 0;
  const pending = Array.from({ length: count }, (_, n) => ({ n, due: 0, deliveries: 1 }));
  const done = new Set<number>();
  const dead = new Map<number, Decision>();
  for (let guard = 0; pending.length > 0; guard++) {
    if (guard > 20_000) throw new Error('the queue did not drain');
    pending.sort((a, b) => a.due - b.due || a.n - b.n);
    const next = pending.shift()!;
    await clock.advanceTo(next.due);
    const started = clock.now();
    let settled = false;
    const running = handle(next.n, next.deliveries).finally(() => {
      settled = true;
    });
    for (let steps = 0; !settled; steps++) {
      if (steps > 10_000) throw new Error('a delivery never settled');
      whileRunning();
      await clock.advance(STEP);
    }
    const d = await running;
    longest = Math.max(longest, clock.now() - started);
    if (d.action === 'done') done.add(next.n);
    else if (d.action === 'dead-letter') dead.set(next.n, d);
    else {
      const deliveries = d.action === 'retry' ? next.deliveries + 1 : next.deliveries;
      pending.push({ n: next.n, due: clock.now() + Math.max(1, d.delayMs!), deliveries });
    }
  }
  return { done, dead, longest };
}

describe('messageHandler properties', () => {
  it('every message ends in exactly one place; outages are deferred, never counted beyond what opens the breaker', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.constantFrom<Step>('ok', 'transient', 'poison'), { maxLength: 6 }), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.array(fc.record({ start: fc.nat(2000), length: fc.integer({ min: 1, max: 3000 }) }), {
          maxLength: 2,
        }),
        fc.integer({ min: 1, max: 5 }),
        async (scripts, outages, maxDeliveries) => {
          const clock = new VirtualClock();
          const down = (t: number) => outages.some((o) => t >= o.start && t < o.start + o.length);
          const dep = dependency('prop', {
            clock,
            retry: false,
            // The breaker waits for its trial while open, as dependency() makes it by default.
            circuitBreaker: {
              consecutiveFailures: 2,
              halfOpenAfter: 100,
              whileOpen: { wait: true, maxWait: 1000 },
              slowStart: { window: 1000 },
            },
          });
          const calls = scripts.map(() => 0);
          const counted = scripts.map(() => 0);
          const effects = scripts.map(() => 0);
          const handler = messageHandler(
            dep,
            async (n: number) => {
              if (down(clock.now())) throw status(503);
              const step = scripts[n]![calls[n]!++] ?? 'ok';
              if (step === 'poison') throw status(400);
              if (step === 'transient') throw status(502);
              effects[n]!++;
              return n;
            },
            { maxDeliveries, backoff: 10, clock },
          );
          const { done, dead, longest } = await drain(
            clock,
            scripts.length,
            async (n, deliveries) => {
              const d = await handler.handle(n, { id: `m${n}`, deliveries });
              if (
                d.action === 'retry' ||
                (d.action === 'dead-letter' && d.reason === 'max-deliveries')
              )
                counted[n]!++;
              return d;
            },
            () => {
              // Only the slow start after closing may hold a delivery inside the breaker.
              const breaker = dep.breaker!;
              if (breaker.state !== 'closed') expect(breaker.waiting, 'waits while open').toBe(0);
            },
          );
          scripts.forEach((script, n) => {
            // Exactly one place.
            expect(done.has(n) !== dead.has(n), `message ${n} in exactly one place`).toBe(true);
            // The effect happens at most once, and exactly once for a processed message.
            expect(effects[n]).toBe(done.has(n) ? 1 : 0);
            const letter = dead.get(n);
            if (letter?.reason === 'max-deliveries') {
              expect(letter.deliveries).toBe(maxDeliveries);
              expect(counted[n]).toBe(maxDeliveries);
            }
            if (letter?.reason === 'not-retryable') expect(script).toContain('poison');
          });
          // No delivery waits for an open breaker's trial (the queue is the wait): the most
          // one takes is being held back by the slow start after the breaker closes.
          expect(longest).toBeLessThanOrEqual(1000 + STEP);
          // Before the breaker opens, at most one failure of each outage is counted (the
          // second in a row opens it); after that, failures and refusals are deferrals.
          const outageCounted = outages.length * 1;
          scripts.forEach((script, n) => {
            if (!script.includes('poison') && !script.includes('transient')) {
              expect(counted[n]).toBeLessThanOrEqual(outageCounted);
              if (maxDeliveries > outageCounted) expect(dead.has(n)).toBe(false);
            }
          });
        },
      ),
      { numRuns: 150 },
    );
  });

  it('concurrent deliveries of one message run its work at most once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 2, max: 5 }),
        async (s, messages, copies) => {
          const runs = new Map<number, number>();
          const handler = messageHandler(
            dependency('dupes', { retry: false }),
            async (n: number) => {
              runs.set(n, (runs.get(n) ?? 0) + 1);
              await s.schedule(Promise.resolve(), `work ${n}`);
              return n;
            },
            { deferDelay: 5 },
          );
          const deliveries: Array<Promise<Decision>> = [];
          for (let n = 0; n < messages; n++)
            for (let c = 0; c < copies; c++)
              deliveries.push(
                s
                  .schedule(Promise.resolve(), `deliver ${n}#${c}`)
                  .then(() => handler.handle(n, { id: `m${n}`, deliveries: 1 })),
              );
          const all = Promise.all(deliveries);
          await s.waitFor(all);
          const decisions = await all;
          for (let n = 0; n < messages; n++) {
            expect(runs.get(n)).toBe(1);
            const mine = decisions.slice(n * copies, (n + 1) * copies);
            // One ran it; each other copy was replayed (done) or deferred while it ran.
            expect(mine.filter((d) => d.action === 'done' && !d.replayed)).toHaveLength(1);
            for (const d of mine) expect(['done', 'defer']).toContain(d.action);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
