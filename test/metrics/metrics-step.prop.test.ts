import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dependency, TimeoutError, type Context, type ExecuteOptions } from '../../src/index.js';
import type {
  CallOutcome,
  DependencyMetrics,
  MetricsProvider,
} from '../../src/metrics/recorder.js';
import { deadlineTimersOf } from '../../src/core/deadline-timers.js';
import { VirtualClock } from '../../src/testing/index.js';
import { collectUnhandledRejections } from '../support/async.js';

const unhandled = collectUnhandledRejections();
const never = () => new Promise<never>(() => {});

/** A metrics backend that keeps what it is told; `failWith` makes recordCall throw. */
function recording(failWith?: Error): {
  provider: MetricsProvider;
  calls: Array<[CallOutcome, number]>;
} {
  const calls: Array<[CallOutcome, number]> = [];
  const noop = () => {};
  const recorder: DependencyMetrics = {
    dependency: 'x',
    recordCall(outcome, seconds) {
      calls.push([outcome, seconds]);
      if (failWith !== undefined) throw failWith;
    },
    recordRetry: noop,
    recordRetryBudgetExhausted: noop,
    recordCircuitTransition: noop,
    observeCircuitState: noop,
    observeBulkhead: noop,
    recordLoadShed: noop,
    observeConcurrencyLimit: noop,
    recordIdempotency: noop,
  };
  return { provider: { forDependency: () => recorder }, calls };
}

describe('the metrics step of a dependency', () => {
  it('records the call before the caller sees its outcome', async () => {
    const { provider, calls } = recording();
    const dep = dependency('x', { metrics: provider, retry: false, circuitBreaker: false });
    const seen: number[] = [];
    await dep.execute(() => 1).then(() => seen.push(calls.length));
    await dep.execute(() => Promise.reject(new Error('no'))).catch(() => seen.push(calls.length));
    expect(seen).toEqual([1, 2]);
    expect(calls.map(([o]) => o)).toEqual(['success', 'failure']);
  });

  it("records a call that the caller's budget or signal ends while its work hangs", async () => {
    const { provider, calls } = recording();
    const clock = new VirtualClock();
    const dep = dependency('x', { metrics: provider, clock });
    const byBudget = dep.execute(never, { budget: 50 }).catch((e: unknown) => e);
    await clock.advance(50);
    expect(await byBudget).toBeInstanceOf(TimeoutError);
    expect(calls).toEqual([['timeout', 0.05]]);
    const caller = new AbortController();
    const left = new Error('caller left');
    const bySignal = dep.execute(never, { signal: caller.signal }).catch((e: unknown) => e);
    await clock.advance(10);
    caller.abort(left);
    expect(await bySignal).toBe(left);
    expect(calls).toHaveLength(2);
    expect(calls[1]![1]).toBeCloseTo(0.01);
    // Nothing is recorded twice when the hung work's inner deadlines pass later.
    await clock.advance(20_000);
    expect(calls).toHaveLength(2);
  });

  it('names the dependency in the errors of its calls, as a dependency without metrics does', async () => {
    const { provider, calls } = recording();
    const clock = new VirtualClock();
    const dep = dependency('x', { metrics: provider, clock, retry: false, timeout: 20 });
    // Ended inside: the metrics step's own reaction names it.
    const timedOut = dep.execute(never).catch((e: unknown) => e);
    await clock.advance(20);
    expect(await timedOut).toMatchObject({
      dependency: 'x',
      message: 'x: attempt timed out after 20 ms',
    });
    // Refused before it reached the metrics step: named all the same.
    const refused = await dep.execute(() => 1, { bogus: 1 } as never).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'ERR_CONFIG', dependency: 'x' });
    // A call of the same dependency inside fn: each call's error is named, inner first.
    const nested = dep.execute(() => dep.execute(never)).catch((e: unknown) => e);
    await clock.advance(20);
    expect(await nested).toMatchObject({
      dependency: 'x',
      message: 'x: attempt timed out after 20 ms',
    });
    expect(calls.map(([o]) => o)).toEqual(['timeout', 'timeout', 'timeout']);
    // Started through the pipeline itself, a call is recorded but not named, as without metrics.
    const direct = dep.pipeline.execute(never).catch((e: unknown) => e);
    await clock.advance(20);
    expect(await direct).toMatchObject({ message: 'attempt timed out after 20 ms' });
    expect((await direct) as { dependency?: string }).not.toHaveProperty('dependency', 'x');
    expect(calls).toHaveLength(4);
  });

  it('a backend that throws never changes the call: its error is reported apart', async () => {
    const broken = new Error('backend down');
    const { provider } = recording(broken);
    const dep = dependency('x', { metrics: provider, retry: false, circuitBreaker: false });
    const reported: unknown[] = [];
    const onUncaught = (e: unknown) => reported.push(e);
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', onUncaught);
    try {
      expect(await dep.execute(() => 'ok')).toBe('ok');
      const failure = new Error('work failed');
      expect(await dep.execute(() => Promise.reject(failure)).catch((e: unknown) => e)).toBe(
        failure,
      );
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('uncaughtException', onUncaught);
      for (const l of listeners) process.on('uncaughtException', l);
    }
    expect(reported).toEqual([broken, broken]);
    expect(unhandled()).toEqual([]);
  });

  it('property: a dependency settles the same with metrics as without (value, error, time), and records a call at most once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 400 }), // budget
        fc.option(fc.integer({ min: 1, max: 400 }), { nil: undefined }), // attempt timeout
        fc.option(fc.integer({ min: 0, max: 500 }), { nil: undefined }), // budget option
        fc.option(fc.integer({ min: 0, max: 500 }), { nil: undefined }), // caller aborts at
        fc.boolean(), // under a parent call
        fc.option(fc.integer({ min: 0, max: 500 }), { nil: undefined }), // fn latency; none: hangs
        fc.boolean(), // fn fails
        async (budgetMs, timeoutMs, budgetOpt, abortAt, underParent, latency, fails) => {
          const run = async (withMetrics: boolean) => {
            const clock = new VirtualClock({ start: 100 });
            const { provider, calls } = recording();
            const config = {
              budget: budgetMs,
              ...(timeoutMs === undefined ? {} : { timeout: Math.min(timeoutMs, budgetMs) }),
              retry: false as const,
              circuitBreaker: false as const,
              loadShedder: false as const,
              clock,
            };
            const dep = dependency('x', withMetrics ? { ...config, metrics: provider } : config);
            const outer = dependency('outer', { budget: 450, retry: false, clock });
            const options: ExecuteOptions = {};
            if (budgetOpt !== undefined) options.budget = budgetOpt;
            if (abortAt !== undefined) {
              const caller = new AbortController();
              clock.setTimeout(() => caller.abort(new Error('gone')), abortAt);
              options.signal = caller.signal;
            }
            const work = () =>
              latency === undefined
                ? never()
                : clock.sleep(latency).then(() => {
                    if (fails) throw new Error('failed');
                    return 'ok';
                  });
            let ending: unknown;
            const start = (parent?: Context) =>
              dep.execute(work, parent === undefined ? options : { ...options, parent }).then(
                (v) => (ending = { at: clock.now(), v }),
                (e: unknown) =>
                  (ending = {
                    at: clock.now(),
                    type: (e as Error).constructor.name,
                    scope: (e as TimeoutError).scope,
                    message: (e as Error).message,
                    dependency: (e as TimeoutError).dependency,
                  }),
              );
            const done = underParent ? outer.execute((ctx) => start(ctx)).catch(() => {}) : start();
            await clock.runAll();
            await done;
            expect(deadlineTimersOf(clock).size).toBe(0);
            // At most once: a call ended by its caller's own limit (the budget option, the
            // signal) while its work hangs is not seen by the steps inside that limit.
            if (withMetrics) expect(calls.length).toBeLessThanOrEqual(1);
            if (
              withMetrics &&
              latency !== undefined &&
              budgetOpt === undefined &&
              abortAt === undefined
            )
              expect(calls).toHaveLength(1);
            return ending;
          };
          expect(await run(true)).toEqual(await run(false));
        },
      ),
      { numRuns: 200 },
    );
    await new Promise((r) => setImmediate(r));
    expect(unhandled()).toEqual([]);
  });
});
