import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  budget,
  bulkhead,
  circuitBreaker,
  pipeline,
  rateLimit,
  retry,
  timeout,
  TimeoutError,
} from '../../src/index.js';
import { deadlineTimersOf } from '../../src/core/deadline-timers.js';
import { terminalStep, type AnyPolicy } from '../../src/core/pipeline.js';
import type { AttemptHandler } from '../../src/core/attempt-handler.js';
import { CallContext } from '../../src/core/context.js';
import { VirtualClock } from '../../src/testing/index.js';
import { collectUnhandledRejections, endingOf } from '../support/async.js';
import { passThrough } from '../support/pass-through.js';

const unhandled = collectUnhandledRejections();
const never = () => new Promise<never>(() => {});
const fail503 = () => Object.assign(new Error('503'), { status: 503 });

// A step between retry and timeout that only passes the call on: the attempt's failure
// then reaches the retry as a rejection (the path every other inner policy takes), not
// handed over by the timeout's guard.
const plain = passThrough;

describe('retry right outside a timeout (attempt failures handed over, no reaction of its own)', () => {
  it('a timed-out attempt that fails later starts no extra attempt', async () => {
    const clock = new VirtualClock();
    const p = pipeline(retry({ maxAttempts: 3, backoff: 0 }), timeout(100, { clock }));
    let attempts = 0;
    const call = p.execute(() => {
      attempts++;
      // The first attempt fails only after its timeout; the second succeeds at once.
      if (attempts === 1) return clock.sleep(150).then(() => Promise.reject(fail503()));
      return 'ok';
    });
    await clock.advance(100);
    expect(await call).toBe('ok');
    await clock.advance(100); // the first attempt's late failure
    expect(attempts).toBe(2);
    expect(deadlineTimersOf(clock).size).toBe(0);
  });

  it('an attempt that throws synchronously is retried, and the last failure rejects the call', async () => {
    const clock = new VirtualClock();
    const p = pipeline(retry({ maxAttempts: 3, backoff: 0 }), timeout(100, { clock }));
    let attempts = 0;
    const error = await p
      .execute(() => {
        attempts++;
        throw fail503();
      })
      .catch((e: unknown) => e);
    expect((error as Error).message).toBe('503');
    expect(attempts).toBe(3);
  });

  it('property: settles exactly as the same pipeline whose failures reach the retry as rejections', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 400 }), // attempt timeout
        fc.integer({ min: 1, max: 4 }), // maxAttempts
        fc.integer({ min: 0, max: 300 }), // backoff
        fc.array(fc.option(fc.integer({ min: 0, max: 500 }), { nil: undefined }), {
          minLength: 1,
          maxLength: 4,
        }), // latency per attempt, undefined: hangs and ignores its signal
        fc.array(fc.constantFrom('ok', 'fail', 'throw'), { minLength: 1, maxLength: 4 }),
        fc.option(fc.integer({ min: 0, max: 1500 }), { nil: undefined }), // caller aborts at
        async (attemptMs, maxAttempts, backoff, latencies, kinds, abortAt) => {
          const run = async (handed: boolean) => {
            const clock = new VirtualClock({ start: 1_000 });
            const parts = [retry({ maxAttempts, backoff, minAttemptTime: 0 })];
            const p = pipeline(...parts, ...(handed ? [] : [plain]), timeout(attemptMs, { clock }));
            const controller = new AbortController();
            if (abortAt !== undefined)
              clock.setTimeout(() => controller.abort(new Error('caller')), abortAt);
            const seen: Array<[number, number, number]> = [];
            let n = 0;
            const outcome = p.execute(
              (ctx) => {
                const i = n++;
                seen.push([ctx.attempt, ctx.deadline, clock.now()]);
                const kind = kinds[i % kinds.length];
                if (kind === 'throw') throw fail503();
                const latency = latencies[i % latencies.length];
                if (latency === undefined) return never();
                return clock.sleep(latency).then(() => {
                  if (kind === 'fail') throw fail503();
                  return 'ok';
                });
              },
              { signal: controller.signal },
            );
            const ending = endingOf(outcome, clock);
            await clock.runAll();
            expect(deadlineTimersOf(clock).size).toBe(0);
            return { ending: await ending, seen };
          };
          expect(await run(true)).toEqual(await run(false));
        },
      ),
      { numRuns: 300 },
    );
    await new Promise((r) => setImmediate(r));
    expect(unhandled()).toEqual([]);
  });
});

describe('a guard handing its attempt over', () => {
  it('a handler that throws fails the call with that error instead of leaving it unsettled', async () => {
    const clock = new VirtualClock();
    const root = CallContext.root(clock, Infinity);
    const broken = new Error('handler bug');
    const handler: AttemptHandler = {
      failed: () => {
        throw broken;
      },
    };
    const attempt = root.child(100, 'attempt', 100);
    const call = attempt.guard(
      () => Promise.reject(fail503()),
      terminalStep,
      undefined,
      100,
      handler,
    );
    await expect(call).rejects.toBe(broken);
    expect(deadlineTimersOf(clock).size).toBe(0);
  });
});

describe('retry, closed breaker and bulkhead in front of an attempt timeout (outcomes handed over)', () => {
  it('a breaker and a bulkhead in front of the timeout count and free without reactions: the slot frees, the failure counts', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ consecutiveFailures: 2, halfOpenAfter: 1000 });
    const bh = bulkhead({ maxConcurrent: 1 });
    const p = pipeline(retry({ maxAttempts: 2, backoff: 0 }), breaker, bh, timeout(100, { clock }));
    // Both attempts time out (the work ignores its signal): two failures open the breaker,
    // and the slot is free again although the work still hangs.
    const call = p.execute(() => never()).catch((e: unknown) => e);
    await clock.advance(100);
    await clock.advance(100);
    expect(await call).toBeInstanceOf(TimeoutError);
    expect(breaker.state).toBe('open');
    expect(bh.inFlight).toBe(0);
    expect(deadlineTimersOf(clock).size).toBe(0);
  });

  it('property: calls settle as with a pass-through step between every part (ordinary reactions), whatever the timing, failures, hangs, queueing, breaker trips and caller aborts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          budgetMs: fc.option(fc.integer({ min: 1, max: 2000 }), { nil: undefined }),
          attemptMs: fc.integer({ min: 1, max: 300 }),
          maxAttempts: fc.integer({ min: 1, max: 3 }),
          backoff: fc.integer({ min: 0, max: 200 }),
          trip: fc.integer({ min: 1, max: 4 }),
          // A breaker that times slow calls, or lets calls wait while open, takes its
          // ordinary path (a reaction of its own); the chain around it must not notice.
          slowCallMs: fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
          waitWhileOpen: fc.boolean(),
          halfOpenAfter: fc.integer({ min: 1, max: 500 }),
          slots: fc.integer({ min: 1, max: 3 }),
          queue: fc.integer({ min: 0, max: 3 }),
          // Where a pass-through step sits in the handed-over pipeline: none, or one place.
          gap: fc.constantFrom(0, 1, 2, 3),
        }),
        fc.array(
          fc.record({
            startAt: fc.integer({ min: 0, max: 600 }),
            abortAt: fc.option(fc.integer({ min: 0, max: 1500 }), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        fc.array(
          fc.record({
            latency: fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined }),
            kind: fc.constantFrom('ok', 'fail', 'throw', 'fail400'),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        async (cfg, calls, behaviours) => {
          const run = async (handed: boolean) => {
            const clock = new VirtualClock({ start: 1_000 });
            const breaker = circuitBreaker({
              consecutiveFailures: cfg.trip,
              halfOpenAfter: cfg.halfOpenAfter,
              ...(cfg.slowCallMs === undefined
                ? {}
                : { slowCall: { ms: cfg.slowCallMs, rate: 0.5 }, minimumCalls: 2 }),
              ...(cfg.waitWhileOpen ? { whileOpen: { wait: true, maxWait: 300 } } : {}),
            });
            const bh = bulkhead({ maxConcurrent: cfg.slots, maxQueue: cfg.queue });
            const transitions: string[] = [];
            breaker.on('stateChange', ({ from, to }) =>
              transitions.push(`${from}>${to}@${clock.now()}`),
            );
            const inner: AnyPolicy[] = [
              retry({ maxAttempts: cfg.maxAttempts, backoff: cfg.backoff, minAttemptTime: 0 }),
              breaker,
              bh,
              timeout(cfg.attemptMs, { clock }),
            ];
            // Baseline: a pass-through step between every two parts. Handed over: all the
            // parts adjacent, or one gap that ends the hand-over chain there. The step is
            // a rate limit that never limits: like the parts, it waits only by subscribing,
            // so a budget in front is armed lazily either way (a plain step would make it
            // guard the whole call and change which deadline fires).
            const gap = () => rateLimit({ rate: 1_000_000, per: 1000, burst: 1_000_000 });
            const parts: AnyPolicy[] = [];
            inner.forEach((part, i) => {
              if (i > 0 && (handed ? cfg.gap === i : true)) parts.push(gap());
              parts.push(part);
            });
            if (cfg.budgetMs !== undefined) parts.unshift(budget(cfg.budgetMs, { clock }));
            const p = pipeline(...parts);
            const seen: string[] = [];
            let n = 0;
            const endings = calls.map(async (c, callIndex) => {
              await clock.sleep(c.startAt);
              const controller = new AbortController();
              if (c.abortAt !== undefined)
                clock.setTimeout(() => controller.abort(new Error('caller')), c.abortAt);
              return p
                .execute(
                  (ctx) => {
                    const b = behaviours[n++ % behaviours.length]!;
                    seen.push(`${callIndex}#${ctx.attempt}@${clock.now()}<${ctx.deadline}`);
                    if (b.kind === 'throw') throw fail503();
                    if (b.latency === undefined) return never();
                    return clock.sleep(b.latency).then(() => {
                      if (b.kind === 'fail') throw fail503();
                      if (b.kind === 'fail400')
                        throw Object.assign(new Error('400'), { status: 400 });
                      return 'ok';
                    });
                  },
                  { signal: controller.signal },
                )
                .then(
                  (v) => `${v}@${clock.now()}`,
                  (e: unknown) => `${(e as Error).name}:${(e as Error).message}@${clock.now()}`,
                );
            });
            await clock.runAll();
            const outcomes = await Promise.all(endings);
            expect(bh.inFlight).toBe(0);
            expect(bh.queued).toBe(0);
            expect(deadlineTimersOf(clock).size).toBe(0);
            return { outcomes, seen, transitions };
          };
          expect(await run(true)).toEqual(await run(false));
        },
      ),
      { numRuns: 300 },
    );
    await new Promise((r) => setImmediate(r));
    expect(unhandled()).toEqual([]);
  });
});
