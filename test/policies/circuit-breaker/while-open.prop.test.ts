import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { circuitBreaker } from '../../../src/policies/circuit-breaker/circuit-breaker.js';
import { SlowStart } from '../../../src/policies/circuit-breaker/slow-start.js';
import { VirtualClock } from '../../../src/testing/index.js';

const boom = new Error('boom');

type Command =
  | { kind: 'call'; budget: number; fails: boolean }
  | { kind: 'advance'; ms: number }
  | { kind: 'answer' }
  | { kind: 'abort'; which: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constant('call' as const),
    budget: fc.integer({ min: 1, max: 1500 }),
    fails: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 300 }) }),
  fc.record({ kind: fc.constant('answer' as const) }),
  fc.record({ kind: fc.constant('abort' as const), which: fc.nat(40) }),
);

interface Tracked {
  deadline: number;
  abortedAt: number;
  settledAt: number | undefined;
  settles: number;
  runs: number;
  controller: AbortController;
}

describe('breaker waiters (property)', () => {
  it('never exceed maxQueue, never outlive their deadline or abort, all settle exactly once, with one timer', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.record({
          halfOpenAfter: fc.integer({ min: 1, max: 400 }),
          maxQueue: fc.integer({ min: 0, max: 6 }),
          maxWait: fc.integer({ min: 0, max: 2000 }),
          slowStart: fc.oneof(
            fc.constant(false as const),
            fc.record({ window: fc.integer({ min: 1, max: 1000 }) }),
          ),
          halfOpenMaxCalls: fc.integer({ min: 1, max: 2 }),
        }),
        fc.array(command, { minLength: 1, maxLength: 40 }),
        async (s, o, commands) => {
          const clock = new VirtualClock();
          const breaker = circuitBreaker({
            consecutiveFailures: 1,
            halfOpenAfter: o.halfOpenAfter,
            halfOpenMaxCalls: o.halfOpenMaxCalls,
            whileOpen: { wait: true, maxQueue: o.maxQueue, maxWait: o.maxWait },
            slowStart: o.slowStart,
            clock,
          });
          await breaker.execute(() => Promise.reject(boom)).catch(() => undefined);
          const calls: Tracked[] = [];
          const check = () => {
            expect(breaker.waiting).toBeLessThanOrEqual(o.maxQueue);
            // The breaker's one timer, and the shared deadline heap's one timer.
            expect(clock.pending).toBeLessThanOrEqual(2);
          };
          for (const c of commands) {
            if (c.kind === 'call') {
              const controller = new AbortController();
              const t: Tracked = {
                deadline: clock.now() + c.budget,
                abortedAt: Infinity,
                settledAt: undefined,
                settles: 0,
                runs: 0,
                controller,
              };
              calls.push(t);
              const settle = () => {
                t.settles++;
                t.settledAt = clock.now();
              };
              breaker
                .execute(
                  () => {
                    t.runs++;
                    return s.schedule(Promise.resolve(c.fails)).then((fails) => {
                      if (fails) throw boom;
                      return 'ok';
                    });
                  },
                  { budget: c.budget, signal: controller.signal },
                )
                .then(settle, settle);
            } else if (c.kind === 'advance') {
              await clock.advance(c.ms);
            } else if (c.kind === 'answer') {
              if (s.count() > 0) await s.waitOne();
            } else {
              const t = calls[c.which % Math.max(1, calls.length)];
              if (t !== undefined && t.abortedAt === Infinity) {
                t.abortedAt = clock.now();
                t.controller.abort(new Error('caller gone'));
              }
            }
            await clock.advance(0);
            check();
          }
          // Let everything finish: answer what runs, move time on until all budgets are spent.
          for (let i = 0; i < 200 && calls.some((t) => t.settles === 0); i++) {
            if (s.count() > 0) await s.waitOne();
            else await clock.advance(50);
            check();
          }
          await s.waitAll();
          await clock.runAll();
          for (const t of calls) {
            expect(t.settles).toBe(1);
            expect(t.runs).toBeLessThanOrEqual(1);
            expect(t.settledAt!).toBeLessThanOrEqual(Math.min(t.deadline, t.abortedAt));
          }
          expect(breaker.waiting).toBe(0);
          expect(clock.pending).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('slow start (property)', () => {
  it('never admits more than its share of the calls offered', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.nat(50),
        fc.array(fc.tuple(fc.nat(200), fc.boolean()), { maxLength: 200 }),
        (window, waiting, steps) => {
          const s = new SlowStart(window);
          let now = 0;
          s.begin(now, waiting);
          for (const [dt, offer] of steps) {
            now += dt;
            if (offer) s.offer();
            if (s.offered === 0) continue;
            if (s.admit(now)) {
              // The first call of a ramp always goes; after it, the share holds.
              if (s.admitted > 1)
                expect(s.admitted).toBeLessThanOrEqual(s.share(now) * s.offered + 1e-9);
            }
            expect(s.admitted).toBeLessThanOrEqual(s.offered);
          }
        },
      ),
    );
  });
});

describe('breaker slow start (property)', () => {
  it('never lets more calls run than its share of those offered since closing, waiters included', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 10, max: 2000 }),
        fc.boolean(),
        fc.nat(20),
        fc.array(fc.tuple(fc.nat(100), fc.integer({ min: 1, max: 5 })), { maxLength: 40 }),
        async (window, wait, waitersAtClose, arrivals) => {
          const clock = new VirtualClock();
          const breaker = circuitBreaker({
            consecutiveFailures: 1,
            halfOpenAfter: 100,
            whileOpen: { wait },
            slowStart: { window },
            clock,
          });
          await breaker.execute(() => Promise.reject(boom)).catch(() => undefined);
          let closedAt: number | undefined;
          breaker.on('stateChange', ({ to }) => {
            if (to === 'closed') closedAt = clock.now();
          });
          let started = 0;
          const work = () => {
            if (closedAt !== undefined) started++;
            return clock.sleep(5).then(() => 'ok');
          };
          const all: Promise<unknown>[] = [];
          // Calls waiting for the trial (only when waiting is on); the first becomes the trial.
          if (wait)
            for (let i = 0; i < waitersAtClose; i++)
              all.push(breaker.execute(work, { budget: 60_000 }).catch(() => undefined));
          await clock.advance(100);
          if (!wait || waitersAtClose === 0) all.push(breaker.execute(work).catch(() => undefined));
          for (let i = 0; i < 20 && closedAt === undefined; i++) await clock.advance(5);
          expect(closedAt).toBeDefined();
          const offeredAtClose = breaker.waiting;
          started = 0;
          let offered = offeredAtClose;
          const share = () => {
            const p = (clock.now() - closedAt!) / window;
            return p >= 1 ? 1 : 0.1 + 0.9 * p;
          };
          for (const [dt, n] of arrivals) {
            await clock.advance(dt);
            for (let i = 0; i < n; i++) {
              offered++;
              all.push(breaker.execute(work, { budget: 60_000 }).catch(() => undefined));
            }
            await clock.advance(0);
            if (share() < 1) expect(started).toBeLessThanOrEqual(Math.max(1, share() * offered));
          }
          await clock.runAll();
          await Promise.all(all);
          expect(breaker.waiting).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });
});
