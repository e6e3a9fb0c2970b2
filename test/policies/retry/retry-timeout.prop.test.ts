import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pipeline, retry, timeout, TimeoutError } from '../../../src/index.js';
import { deadlineTimersOf } from '../../../src/core/deadline-timers.js';
import type { AnyPolicy } from '../../../src/core/pipeline.js';
import { VirtualClock } from '../../../src/testing/index.js';
import { collectUnhandledRejections } from '../../support/async.js';

const unhandled = collectUnhandledRejections();
const never = () => new Promise<never>(() => {});
const fail503 = () => Object.assign(new Error('503'), { status: 503 });

// A step between retry and timeout that only passes the call on: the attempt's failure
// then reaches the retry as a rejection (the path every other inner policy takes), not
// handed over by the timeout's guard.
const plain: AnyPolicy = {
  kind: 'plain',
  clock: undefined,
  execute: () => Promise.reject(new Error('not used')),
  run: (ctx, fn, next) => next.invoke(ctx, fn),
};

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
            const outcome = p
              .execute(
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
              )
              .then(
                (v) => ({ v, at: clock.now() }),
                (e: unknown) => ({
                  e: (e as Error).message,
                  timeout: e instanceof TimeoutError ? e.scope : undefined,
                  at: clock.now(),
                }),
              );
            await clock.runAll();
            const ending = await outcome;
            expect(deadlineTimersOf(clock).size).toBe(0);
            return { ending, seen };
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
