import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CircuitOpenError, dependency } from '../../../src/index.js';
import { VirtualClock } from '../../../src/testing/index.js';

/** Work that ignores its signal and settles only when told to. */
function stubbornWork() {
  let running = 0;
  let peak = 0;
  let calls = 0;
  const finishers: (() => void)[] = [];
  const fn = (): Promise<string> => {
    calls++;
    running++;
    peak = Math.max(peak, running);
    return new Promise<string>((resolve) => {
      finishers.push(() => {
        running--;
        resolve('late');
      });
    });
  };
  return {
    fn,
    finishOne: () => finishers.shift()?.(),
    get running() {
      return running;
    },
    get peak() {
      return peak;
    },
    get calls() {
      return calls;
    },
  };
}

async function halfOpenDependency(clock: VirtualClock) {
  const dep = dependency('payments', {
    clock,
    budget: '10s',
    timeout: '5s',
    // One attempt per call and no waiting while open: the trial slot alone is under test.
    retry: false,
    loadShedder: false,
    circuitBreaker: {
      consecutiveFailures: 1,
      halfOpenAfter: 1000,
      halfOpenMaxCalls: 1,
      whileOpen: { wait: false },
      slowStart: false,
    },
  });
  await dep.execute(() => Promise.reject(new Error('down'))).catch(() => {});
  expect(dep.breaker!.state).toBe('open');
  await clock.advance(1000);
  expect(dep.breaker!.state).toBe('half-open');
  return dep;
}

describe('a half-open trial keeps its slot until its work settles', () => {
  it('a caller abort does not let a second call reach the dependency while the first trial runs', async () => {
    const clock = new VirtualClock();
    const dep = await halfOpenDependency(clock);
    const work = stubbornWork();
    const caller = new AbortController();
    const first = dep.execute(work.fn, { signal: caller.signal }).catch((e: unknown) => e);
    await clock.advance(10);
    caller.abort(new Error('client went away'));
    expect(((await first) as Error).message).toBe('client went away');
    expect(work.running).toBe(1);

    const second = dep.execute(work.fn).catch((e: unknown) => e);
    await clock.advance(0);
    expect(work.calls).toBe(1);
    expect(await second).toBeInstanceOf(CircuitOpenError);
    expect(dep.breaker!.stats().halfOpenTrials).toBe(1);

    work.finishOne();
    await clock.advance(0);
    expect(dep.breaker!.stats().halfOpenTrials).toBe(0);
    const third = dep.execute(work.fn);
    expect(work.calls).toBe(2);
    work.finishOne();
    await expect(third).resolves.toBe('late');
    expect(work.peak).toBe(1);
  });

  it('a trial whose work never settles is failed after halfOpenTimeout, as a hung trial is', async () => {
    const clock = new VirtualClock();
    const dep = await halfOpenDependency(clock);
    const work = stubbornWork();
    const caller = new AbortController();
    const first = dep.execute(work.fn, { signal: caller.signal }).catch((e: unknown) => e);
    caller.abort(new Error('gone'));
    await first;
    // halfOpenTimeout defaults to the attempt timeout or less; far past it the breaker has reopened.
    await clock.advance(60_000);
    expect(dep.breaker!.state).not.toBe('closed');
    expect(work.calls).toBe(1);
  });

  it('property: with halfOpenMaxCalls 1, at most one piece of work runs while half-open, whoever aborts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ abortAfter: fc.nat(20), finishAfter: fc.nat(20) }), {
          minLength: 1,
          maxLength: 6,
        }),
        async (plans) => {
          const clock = new VirtualClock();
          const dep = await halfOpenDependency(clock);
          const work = stubbornWork();
          const calls: Promise<unknown>[] = [];
          for (const plan of plans) {
            const caller = new AbortController();
            calls.push(dep.execute(work.fn, { signal: caller.signal }).catch((e: unknown) => e));
            await clock.advance(plan.abortAfter);
            caller.abort(new Error('gone'));
            await clock.advance(plan.finishAfter);
            if (plan.finishAfter % 2 === 0) work.finishOne();
            await clock.advance(0);
          }
          while (work.running > 0) work.finishOne();
          await Promise.all(calls);
          return work.peak <= 1;
        },
      ),
      { numRuns: 100 },
    );
  });
});
