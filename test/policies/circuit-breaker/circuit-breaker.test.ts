import { describe, expect, it, vi } from 'vitest';
import {
  BulkheadRejectedError,
  CircuitOpenError,
  ConfigError,
  LoadShedError,
  pipeline,
  TimeoutError,
  timeout,
} from '../../../src/index.js';
import {
  circuitBreaker,
  CircuitBreakerPolicy,
} from '../../../src/policies/circuit-breaker/circuit-breaker.js';
import type { CircuitBreakerOptions } from '../../../src/policies/circuit-breaker/options.js';
import { openDuration } from '../../../src/policies/circuit-breaker/open-duration.js';
import { VirtualClock } from '../../../src/testing/index.js';

const boom = new Error('boom');
const ok = () => 'ok';
const fail = (): never => {
  throw boom;
};
const never = () => new Promise<never>(() => {});

function setup(options: Omit<CircuitBreakerOptions, 'clock'> = {}) {
  const clock = new VirtualClock();
  const breaker = circuitBreaker({ ...options, clock });
  const succeed = () => breaker.execute(ok);
  const failOnce = () => breaker.execute(fail).catch((e: unknown) => e);
  return { clock, breaker, succeed, failOnce };
}

/** A function that records whether it ran. */
function spy<T>(impl: () => T) {
  const f = Object.assign(
    () => {
      f.calls++;
      return impl();
    },
    { calls: 0 },
  );
  return f;
}

/** Starts a call whose outcome we decide later. */
function deferredCall(breaker: CircuitBreakerPolicy) {
  let resolve!: (v: string) => void;
  let reject!: (e: unknown) => void;
  const started = spy(
    () =>
      new Promise<string>((res, rej) => {
        resolve = res;
        reject = rej;
      }),
  );
  const outcome = breaker.execute(started).then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  return {
    started,
    outcome,
    resolve: (v = 'ok') => resolve(v),
    reject: (e: unknown = boom) => reject(e),
  };
}

async function rejection(p: Promise<unknown>): Promise<CircuitOpenError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CircuitOpenError);
  return error as CircuitOpenError;
}

describe('circuitBreaker: consecutive failures', () => {
  it('opens after consecutiveFailures failures in a row', async () => {
    const { breaker, failOnce } = setup({ consecutiveFailures: 3 });
    await failOnce();
    await failOnce();
    expect(breaker.state).toBe('closed');
    expect(await failOnce()).toBe(boom);
    expect(breaker.state).toBe('open');
  });

  it('starts the count again after a success', async () => {
    const { breaker, succeed, failOnce } = setup({ consecutiveFailures: 3 });
    await failOnce();
    await failOnce();
    await succeed();
    await failOnce();
    await failOnce();
    expect(breaker.state).toBe('closed');
    expect(breaker.stats().consecutiveFailures).toBe(2);
  });

  it('opens after 5 consecutive failures when no trip rule is given', async () => {
    const { breaker, failOnce } = setup();
    for (let i = 0; i < 4; i++) await failOnce();
    expect(breaker.state).toBe('closed');
    await failOnce();
    expect(breaker.state).toBe('open');
  });

  it('passes values and errors through unchanged', async () => {
    const { breaker } = setup();
    await expect(breaker.execute(() => 42)).resolves.toBe(42);
    await expect(breaker.execute(fail)).rejects.toBe(boom);
  });
});

describe('circuitBreaker: open', () => {
  it('fails calls at once with CircuitOpenError without invoking fn', async () => {
    const { breaker, failOnce } = setup({
      consecutiveFailures: 1,
      halfOpenAfter: 1000,
      name: 'payments',
    });
    await failOnce();
    const fn = spy(ok);
    const error = await rejection(breaker.execute(fn));
    expect(fn.calls).toBe(0);
    expect(error.state).toBe('open');
    expect(error.code).toBe('ERR_CIRCUIT_OPEN');
    expect(error.retryAfterMs).toBe(1000);
    expect(error.message).toBe('payments: circuit is open; next trial in 1 s');
  });

  it('builds the rejection without a stack trace', async () => {
    const { breaker, failOnce } = setup({ consecutiveFailures: 1 });
    await failOnce();
    const error = await rejection(breaker.execute(ok));
    expect(error.stack ?? '').not.toContain('    at ');
  });

  it('counts retryAfterMs down to the next trial', async () => {
    const { clock, breaker, failOnce } = setup({ consecutiveFailures: 1, halfOpenAfter: '2s' });
    await failOnce();
    await clock.advance(1500);
    expect((await rejection(breaker.execute(ok))).retryAfterMs).toBe(500);
    expect(breaker.stats().retryAfterMs).toBe(500);
  });

  it('half-opens lazily, with no timer while open', async () => {
    const { clock, breaker, failOnce } = setup({ consecutiveFailures: 1, halfOpenAfter: 1000 });
    await failOnce();
    expect(clock.pending).toBe(0);
    await clock.advance(999);
    expect(breaker.state).toBe('open');
    await clock.advance(1);
    expect(breaker.state).toBe('half-open');
  });

  it('ignores the outcome of a call admitted while closed that finishes after it opened', async () => {
    const { clock, breaker, failOnce } = setup({
      consecutiveFailures: 1,
      failureRate: 1,
      window: { calls: 5 },
      minimumCalls: 5,
      halfOpenAfter: 1000,
    });
    const late = deferredCall(breaker);
    await failOnce();
    expect(breaker.state).toBe('open');
    await clock.advance(400);
    late.reject();
    expect(await late.outcome).toEqual({ error: boom });
    expect(breaker.stats()).toMatchObject({
      state: 'open',
      timesOpened: 1,
      retryAfterMs: 600,
      calls: 1,
      failures: 1,
    });
  });
});

describe('circuitBreaker: half-open', () => {
  async function openBreaker(options: Omit<CircuitBreakerOptions, 'clock'> = {}) {
    const s = setup({ consecutiveFailures: 1, halfOpenAfter: 1000, ...options });
    await s.failOnce();
    await s.clock.advance(1000);
    return s;
  }

  it('closes after a successful trial', async () => {
    const { breaker } = await openBreaker();
    expect(breaker.state).toBe('half-open');
    await expect(breaker.execute(ok)).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
  });

  it('reopens when a trial fails', async () => {
    const { breaker, failOnce } = await openBreaker();
    expect(await failOnce()).toBe(boom);
    expect(breaker.state).toBe('open');
    expect(breaker.stats().timesOpened).toBe(2);
  });

  it('rejects a second half-open trial while one is running', async () => {
    const { breaker } = await openBreaker();
    const trial = deferredCall(breaker);
    expect(trial.started.calls).toBe(1);
    const second = spy(ok);
    const error = await rejection(breaker.execute(second));
    expect(second.calls).toBe(0);
    expect(error.state).toBe('half-open');
    trial.resolve();
    await trial.outcome;
    expect(breaker.state).toBe('closed');
  });

  it('runs up to halfOpenMaxCalls trials at once and closes after that many successes', async () => {
    const { breaker } = await openBreaker({ halfOpenMaxCalls: 3 });
    const trials = [deferredCall(breaker), deferredCall(breaker), deferredCall(breaker)];
    expect(trials.map((t) => t.started.calls)).toEqual([1, 1, 1]);
    await rejection(breaker.execute(ok));
    expect(breaker.stats().halfOpenTrials).toBe(3);
    trials[0]!.resolve();
    trials[1]!.resolve();
    await Promise.all([trials[0]!.outcome, trials[1]!.outcome]);
    expect(breaker.state).toBe('half-open');
    trials[2]!.resolve();
    await trials[2]!.outcome;
    expect(breaker.state).toBe('closed');
  });

  it('needs halfOpenSuccesses successful trials to close', async () => {
    const { breaker } = await openBreaker({ halfOpenSuccesses: 3 });
    await breaker.execute(ok);
    await breaker.execute(ok);
    expect(breaker.state).toBe('half-open');
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed');
  });

  it('reopens on any failed trial even after earlier successes', async () => {
    const { breaker, failOnce } = await openBreaker({ halfOpenSuccesses: 3 });
    await breaker.execute(ok);
    await failOnce();
    expect(breaker.state).toBe('open');
  });

  it('counts a hung trial as failed at halfOpenTimeout and frees its slot', async () => {
    const { clock, breaker } = await openBreaker({ halfOpenTimeout: 5000 });
    const hung = spy(never);
    void breaker.execute(hung);
    expect(hung.calls).toBe(1);
    await clock.advance(4999);
    expect(breaker.state).toBe('half-open');
    await rejection(breaker.execute(ok));
    await clock.advance(1);
    expect(breaker.state).toBe('open');
    expect(breaker.stats().timesOpened).toBe(2);
    await clock.advance(1000);
    // The hung trial no longer holds the only slot.
    await expect(breaker.execute(ok)).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
  });

  it('counts a trial that succeeds after halfOpenTimeout as a failure', async () => {
    const { clock, breaker } = await openBreaker({ halfOpenTimeout: 100 });
    const late = deferredCall(breaker);
    await clock.advance(100);
    late.resolve();
    expect(await late.outcome).toEqual({ value: 'ok' });
    expect(breaker.state).toBe('open');
  });

  it('ignores the late outcome of a trial from an earlier half-open round', async () => {
    const { clock, breaker } = await openBreaker({ halfOpenTimeout: 100 });
    const stale = deferredCall(breaker);
    await clock.advance(100);
    expect(breaker.state).toBe('open');
    await clock.advance(1000);
    const current = deferredCall(breaker);
    expect(current.started.calls).toBe(1);
    stale.reject();
    await stale.outcome;
    expect(breaker.state).toBe('half-open');
    current.resolve();
    await current.outcome;
    expect(breaker.state).toBe('closed');
  });

  it('frees the slot without deciding when a trial ends in a caller abort', async () => {
    const { breaker } = await openBreaker();
    const controller = new AbortController();
    const aborted = breaker
      .execute(
        (ctx) =>
          new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
          ),
        { signal: controller.signal },
      )
      .catch((e: unknown) => e);
    controller.abort();
    await aborted;
    await new Promise((r) => setImmediate(r));
    expect(breaker.state).toBe('half-open');
    await expect(breaker.execute(ok)).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
  });

  it('reopens when a trial succeeds but slowly', async () => {
    const { clock, breaker } = await openBreaker({ slowCall: { ms: 50, rate: 1 } });
    const trial = breaker.execute(() => clock.sleep(51).then(() => 'late'));
    await clock.advance(51);
    await expect(trial).resolves.toBe('late');
    expect(breaker.state).toBe('open');
  });
});

describe('circuitBreaker: halfOpenAfter backoff', () => {
  it('stays open longer after each consecutive trip and starts over once closed', async () => {
    const { clock, breaker, failOnce } = setup({
      consecutiveFailures: 1,
      halfOpenAfter: { initial: 100, multiplier: 3, max: 500 },
    });
    const openFor: number[] = [];
    for (let i = 0; i < 4; i++) {
      await failOnce();
      openFor.push((await rejection(breaker.execute(ok))).retryAfterMs);
      await clock.advance(openFor[i]!);
      expect(breaker.state).toBe('half-open');
    }
    expect(openFor).toEqual([100, 300, 500, 500]);
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed');
    await failOnce();
    expect((await rejection(breaker.execute(ok))).retryAfterMs).toBe(100);
  });

  it('computes initial × multiplier^(trip − 1), capped at max', () => {
    expect([1, 2, 3, 4].map((trip) => openDuration(100, 2, 500, trip))).toEqual([
      100, 200, 400, 500,
    ]);
    expect(openDuration(250, 1, 250, 7)).toBe(250);
  });
});

describe('circuitBreaker: failure rate over a count window', () => {
  it('opens when failures reach the rate over the last calls', async () => {
    const { breaker, succeed, failOnce } = setup({ failureRate: 0.5, window: { calls: 4 } });
    await succeed();
    await failOnce();
    await succeed();
    expect(breaker.state).toBe('closed');
    await failOnce();
    expect(breaker.state).toBe('open');
  });

  it('waits for minimumCalls before judging the rate', async () => {
    const { breaker, failOnce } = setup({
      failureRate: 0.5,
      window: { calls: 10 },
      minimumCalls: 3,
    });
    await failOnce();
    await failOnce();
    expect(breaker.state).toBe('closed');
    await failOnce();
    expect(breaker.state).toBe('open');
  });

  it('uses the window size as minimumCalls by default', async () => {
    const { breaker, failOnce } = setup({ failureRate: 0.5, window: { calls: 4 } });
    for (let i = 0; i < 3; i++) await failOnce();
    expect(breaker.state).toBe('closed');
    await failOnce();
    expect(breaker.state).toBe('open');
  });

  it('forgets outcomes that left the window', async () => {
    const { breaker, succeed, failOnce } = setup({
      failureRate: 0.5,
      window: { calls: 4 },
      minimumCalls: 4,
    });
    await failOnce();
    for (let i = 0; i < 4; i++) await succeed();
    expect(breaker.stats()).toMatchObject({ calls: 4, failures: 0, successes: 4 });
    await failOnce();
    expect(breaker.stats()).toMatchObject({ calls: 4, failures: 1 });
    expect(breaker.state).toBe('closed');
  });

  it('can trip on the success that completes minimumCalls', async () => {
    const { breaker, succeed, failOnce } = setup({ failureRate: 0.5, window: { calls: 4 } });
    await failOnce();
    await failOnce();
    await failOnce();
    expect(breaker.state).toBe('closed');
    await succeed();
    expect(breaker.state).toBe('open');
  });
});

describe('circuitBreaker: failure rate over a time window', () => {
  it('opens when failures reach the rate within the window', async () => {
    const { clock, breaker, succeed, failOnce } = setup({
      failureRate: 0.5,
      window: { ms: 1000, buckets: 10 },
      minimumCalls: 4,
    });
    await succeed();
    await failOnce();
    await clock.advance(300);
    await succeed();
    expect(breaker.state).toBe('closed');
    await failOnce();
    expect(breaker.state).toBe('open');
  });

  it('no longer counts outcomes older than the window', async () => {
    const { clock, breaker, succeed, failOnce } = setup({
      failureRate: 0.5,
      window: { ms: 1000, buckets: 10 },
      minimumCalls: 4,
    });
    await failOnce();
    await failOnce();
    await failOnce();
    await clock.advance(1000);
    expect(breaker.stats()).toMatchObject({ calls: 0, failures: 0 });
    await succeed();
    await succeed();
    await succeed();
    await failOnce();
    expect(breaker.state).toBe('closed');
  });

  it('uses a 10 s window in 10 buckets and minimumCalls 10 by default', async () => {
    const { clock, breaker, failOnce } = setup({ failureRate: 0.5 });
    for (let i = 0; i < 9; i++) await failOnce();
    expect(breaker.state).toBe('closed');
    await clock.advance(9000);
    await failOnce();
    expect(breaker.state).toBe('open');
  });
});

describe('circuitBreaker: slow calls', () => {
  function slowCall(
    clock: VirtualClock,
    breaker: CircuitBreakerPolicy,
    ms: number,
    failing = false,
  ) {
    const call = breaker
      .execute(() =>
        clock.sleep(ms).then(() => {
          if (failing) throw boom;
          return 'done';
        }),
      )
      .catch((e: unknown) => e);
    return clock.advance(ms).then(() => call);
  }

  it('opens when calls slower than slowCall.ms reach the slow rate', async () => {
    const { clock, breaker, succeed } = setup({
      slowCall: { ms: 100, rate: 0.5 },
      window: { calls: 4 },
    });
    await succeed();
    await slowCall(clock, breaker, 150);
    await succeed();
    expect(breaker.state).toBe('closed');
    expect(breaker.stats()).toMatchObject({ calls: 3, slowCalls: 1, failures: 0 });
    await slowCall(clock, breaker, 101);
    expect(breaker.state).toBe('open');
  });

  it('does not count a call of exactly slowCall.ms as slow', async () => {
    const { clock, breaker } = setup({ slowCall: { ms: 100, rate: 0.5 }, window: { calls: 2 } });
    await slowCall(clock, breaker, 100);
    await slowCall(clock, breaker, 100);
    expect(breaker.stats().slowCalls).toBe(0);
    expect(breaker.state).toBe('closed');
  });

  it('counts a slow failure as both slow and failed', async () => {
    const { clock, breaker } = setup({
      slowCall: { ms: 10, rate: 1 },
      failureRate: 1,
      window: { ms: 1000, buckets: 4 },
      minimumCalls: 2,
    });
    await slowCall(clock, breaker, 20, true);
    expect(breaker.stats()).toMatchObject({ calls: 1, slowCalls: 1, failures: 1 });
  });

  it('waits for minimumCalls before judging the slow rate', async () => {
    const { clock, breaker } = setup({
      slowCall: { ms: 10, rate: 0.5 },
      window: { ms: 10_000 },
      minimumCalls: 3,
    });
    await slowCall(clock, breaker, 20);
    await slowCall(clock, breaker, 20);
    expect(breaker.state).toBe('closed');
    await slowCall(clock, breaker, 20);
    expect(breaker.state).toBe('open');
  });

  it('also opens on 5 consecutive failures when slowCall is the only rule given', async () => {
    const { breaker, failOnce } = setup({ slowCall: { ms: 10, rate: 0.5 } });
    for (let i = 0; i < 5; i++) await failOnce();
    expect(breaker.state).toBe('open');
  });
});

describe('circuitBreaker: what counts as a failure', () => {
  it('does not count the caller abort', async () => {
    const { breaker } = setup({ consecutiveFailures: 1 });
    const controller = new AbortController();
    const call = breaker
      .execute(
        (ctx) =>
          new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(new Error('custom reason'))),
          ),
        { signal: controller.signal },
      )
      .catch((e: unknown) => e);
    controller.abort(new Error('caller went away'));
    await call;
    await new Promise((r) => setImmediate(r));
    expect(breaker.state).toBe('closed');
  });

  it('does not count an AbortError thrown by fn', async () => {
    const { breaker } = setup({ consecutiveFailures: 1 });
    await breaker
      .execute(() => Promise.reject(new DOMException('aborted', 'AbortError')))
      .catch(() => undefined);
    expect(breaker.state).toBe('closed');
  });

  it("does not count bulwark's own rejections", async () => {
    const { breaker } = setup({ consecutiveFailures: 1 });
    for (const error of [
      new BulkheadRejectedError('full', 'bulkhead full'),
      new LoadShedError('capacity', 'shed'),
      new CircuitOpenError('open', 100, 'inner'),
    ]) {
      await breaker.execute(() => Promise.reject(error)).catch(() => undefined);
    }
    expect(breaker.state).toBe('closed');
  });

  it('counts an attempt timeout as a failure', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ consecutiveFailures: 1 });
    const call = pipeline(breaker, timeout(100, { clock }))
      .execute(never)
      .catch((e: unknown) => e);
    await clock.advance(100);
    expect(await call).toBeInstanceOf(TimeoutError);
    expect(breaker.state).toBe('open');
  });

  it('does not count a budget timeout', async () => {
    const { clock, breaker } = setup({ consecutiveFailures: 1 });
    const call = breaker
      .execute(
        (ctx) =>
          new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
          ),
        {
          budget: 100,
        },
      )
      .catch((e: unknown) => e);
    await clock.advance(100);
    expect(await call).toMatchObject({ scope: 'budget' });
    await new Promise((r) => setImmediate(r));
    expect(breaker.state).toBe('closed');
  });

  it('never counts results by default', async () => {
    const { breaker } = setup({ consecutiveFailures: 1 });
    await breaker.execute(() => ({ status: 503 }));
    expect(breaker.state).toBe('closed');
  });

  it('asks isFailure about errors and results', async () => {
    const isFailure = vi.fn((outcome: unknown, kind: 'error' | 'result') =>
      kind === 'result'
        ? (outcome as { status: number }).status >= 500
        : (outcome as Error).message !== 'not found',
    );
    const { breaker } = setup({ consecutiveFailures: 2, isFailure });
    await breaker.execute(() => ({ status: 503 }));
    expect(breaker.stats().consecutiveFailures).toBe(1);
    // Judged not a failure: counts as a success and resets the run.
    await breaker.execute(() => Promise.reject(new Error('not found'))).catch(() => undefined);
    expect(breaker.stats().consecutiveFailures).toBe(0);
    await breaker.execute(() => ({ status: 500 }));
    await breaker.execute(fail).catch(() => undefined);
    expect(breaker.state).toBe('open');
    expect(isFailure).toHaveBeenCalledWith({ status: 503 }, 'result');
    expect(isFailure).toHaveBeenCalledWith(boom, 'error');
  });

  it('counts an outcome as a failure when isFailure throws, and reports the bug', async () => {
    const reported: (() => void)[] = [];
    const queue = vi
      .spyOn(globalThis, 'queueMicrotask')
      .mockImplementation((cb) => reported.push(cb));
    try {
      const { breaker } = setup({
        consecutiveFailures: 1,
        isFailure: () => {
          throw new TypeError('bad predicate');
        },
      });
      await expect(breaker.execute(ok)).resolves.toBe('ok');
      expect(breaker.state).toBe('open');
    } finally {
      queue.mockRestore();
    }
    expect(reported).toHaveLength(1);
    expect(() => reported[0]!()).toThrow('bad predicate');
  });
});

describe('circuitBreaker: isolate and reset', () => {
  it('isolate() holds it open without invoking fn until the handle is released', async () => {
    const { breaker } = setup({ name: 'db' });
    const handle = breaker.isolate();
    expect(breaker.state).toBe('isolated');
    const fn = spy(ok);
    const error = await rejection(breaker.execute(fn));
    expect(fn.calls).toBe(0);
    expect(error.state).toBe('isolated');
    expect(error.retryAfterMs).toBe(Infinity);
    expect(error.message).toBe('db: circuit is isolated');
    handle.release();
    expect(breaker.state).toBe('closed');
    await expect(breaker.execute(fn)).resolves.toBe('ok');
  });

  it('stays isolated until every isolation is released, and releasing twice counts once', async () => {
    const { breaker } = setup();
    const a = breaker.isolate();
    const b = breaker.isolate();
    a.release();
    a.release();
    expect(breaker.state).toBe('isolated');
    expect(breaker.stats().isolations).toBe(1);
    b.dispose();
    expect(breaker.state).toBe('closed');
  });

  it('stays isolated past the open period of an earlier trip', async () => {
    const { clock, breaker, failOnce } = setup({ consecutiveFailures: 1, halfOpenAfter: 100 });
    await failOnce();
    const handle = breaker.isolate();
    await clock.advance(1000);
    expect(breaker.state).toBe('isolated');
    handle.release();
    expect(breaker.state).toBe('closed');
  });

  it('reset() closes an open breaker and clears its window', async () => {
    const { breaker, succeed, failOnce } = setup({ failureRate: 0.5, window: { calls: 4 } });
    await succeed();
    await failOnce();
    await succeed();
    await failOnce();
    expect(breaker.state).toBe('open');
    breaker.reset();
    expect(breaker.state).toBe('closed');
    expect(breaker.stats()).toMatchObject({ calls: 0, failures: 0 });
  });

  it('reset() ends every isolation; handles from before it no longer count', async () => {
    const { breaker } = setup();
    const old = breaker.isolate();
    breaker.reset();
    expect(breaker.state).toBe('closed');
    const fresh = breaker.isolate();
    old.release();
    expect(breaker.state).toBe('isolated');
    fresh.release();
    expect(breaker.state).toBe('closed');
  });
});

describe('circuitBreaker: events and stats', () => {
  it('emits stateChange for each transition', async () => {
    const { clock, breaker, failOnce } = setup({ consecutiveFailures: 1, halfOpenAfter: 100 });
    const changes: string[] = [];
    breaker.on('stateChange', ({ from, to }) => changes.push(`${from}→${to}`));
    await failOnce();
    await clock.advance(100);
    await breaker.execute(ok);
    breaker.isolate().release();
    expect(changes).toEqual([
      'closed→open',
      'open→half-open',
      'half-open→closed',
      'closed→isolated',
      'isolated→closed',
    ]);
  });

  it('emits success, failure and rejected', async () => {
    const { breaker, failOnce } = setup({ consecutiveFailures: 1 });
    const seen: unknown[] = [];
    const subs = [
      breaker.on('success', (e) => seen.push(['success', e])),
      breaker.on('failure', (e) => seen.push(['failure', e])),
      breaker.on('rejected', (e) => seen.push(['rejected', e])),
    ];
    await breaker.execute(ok);
    await failOnce();
    await breaker.execute(ok).catch(() => undefined);
    expect(seen).toEqual([
      ['success', { state: 'closed', slow: false }],
      ['failure', { state: 'closed', slow: false, errorOrResult: boom }],
      ['rejected', { state: 'open' }],
    ]);
    for (const s of subs) s.dispose();
    await breaker.execute(ok).catch(() => undefined);
    expect(seen).toHaveLength(3);
  });

  it('reports a snapshot of its state and window', async () => {
    const { clock, breaker, succeed, failOnce } = setup({
      name: 'search',
      failureRate: 0.75,
      window: { calls: 4 },
      halfOpenAfter: 200,
    });
    await succeed();
    await failOnce();
    expect(breaker.stats()).toEqual({
      name: 'search',
      state: 'closed',
      calls: 2,
      successes: 1,
      failures: 1,
      slowCalls: 0,
      failureRate: 0.5,
      slowCallRate: 0,
      consecutiveFailures: 0,
      timesOpened: 0,
      halfOpenTrials: 0,
      retryAfterMs: 0,
      isolations: 0,
    });
    await failOnce();
    await failOnce();
    await clock.advance(50);
    expect(breaker.stats()).toMatchObject({
      state: 'open',
      timesOpened: 1,
      retryAfterMs: 150,
      failureRate: 0.75,
    });
  });

  it('has a kind and a readable name', () => {
    expect(circuitBreaker().kind).toBe('circuitBreaker');
    expect(circuitBreaker().name).toBe('circuitBreaker');
    expect(circuitBreaker({ name: 'payments' }).name).toBe('payments');
  });

  it('runs on the clock a pipeline hands it', async () => {
    const clock = new VirtualClock({ start: 5000 });
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 300 });
    const p = pipeline(timeout(Infinity, { clock }), breaker);
    await p.execute(fail).catch(() => undefined);
    expect((await rejection(p.execute(ok))).retryAfterMs).toBe(300);
    await clock.advance(300);
    await expect(p.execute(ok)).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
  });
});

describe('circuitBreaker: options', () => {
  function configError(options: unknown, path?: string): ConfigError {
    try {
      if (path === undefined) circuitBreaker(options as CircuitBreakerOptions);
      else new CircuitBreakerPolicy(options as CircuitBreakerOptions, path);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return error as ConfigError;
    }
    throw new Error('expected a ConfigError');
  }

  it('names the path and the bad value', () => {
    expect(configError({ failureRate: 2 }).message).toBe(
      'circuitBreaker.failureRate: expected number in [0, 1], got 2',
    );
    expect(configError({ consecutiveFailures: 0 }, 'payments.circuitBreaker').message).toBe(
      'payments.circuitBreaker.consecutiveFailures: expected integer ≥ 1, got 0',
    );
  });

  it('lists every problem at once', () => {
    const error = configError({
      failureRate: -1,
      halfOpenMaxCalls: 0,
      halfOpenAfter: 'soon',
      tripAfter: 3,
    });
    expect(error.problems.map((p) => p.path)).toEqual([
      'circuitBreaker.tripAfter',
      'circuitBreaker.failureRate',
      'circuitBreaker.halfOpenAfter',
      'circuitBreaker.halfOpenMaxCalls',
    ]);
  });

  it.each([
    [{ failureRate: 0.5, window: { calls: 0 } }, 'circuitBreaker.window.calls'],
    [{ failureRate: 0.5, window: { ms: 0 } }, 'circuitBreaker.window.ms'],
    [{ failureRate: 0.5, window: { ms: 1000, buckets: 0 } }, 'circuitBreaker.window.buckets'],
    [{ failureRate: 0.5, window: { calls: 10, ms: 1000 } }, 'circuitBreaker.window.ms'],
    [{ failureRate: 0.5, window: {} }, 'circuitBreaker.window'],
    [{ failureRate: 0.5, window: 10 }, 'circuitBreaker.window'],
    [{ slowCall: { ms: 100 } }, 'circuitBreaker.slowCall.rate'],
    [{ slowCall: { rate: 0.5 } }, 'circuitBreaker.slowCall.ms'],
    [{ slowCall: { ms: 100, rate: 1.5 } }, 'circuitBreaker.slowCall.rate'],
    [{ halfOpenAfter: { initial: 1000, max: 100 } }, 'circuitBreaker.halfOpenAfter.max'],
    [
      { halfOpenAfter: { initial: 1000, multiplier: 0.5 } },
      'circuitBreaker.halfOpenAfter.multiplier',
    ],
    [{ halfOpenAfter: { initial: 100, jitter: 'full' } }, 'circuitBreaker.halfOpenAfter.jitter'],
    [{ halfOpenTimeout: 0 }, 'circuitBreaker.halfOpenTimeout'],
    [{ halfOpenSuccesses: 0 }, 'circuitBreaker.halfOpenSuccesses'],
    [{ isFailure: true }, 'circuitBreaker.isFailure'],
    [{ name: '' }, 'circuitBreaker.name'],
    [{ clock: {} }, 'circuitBreaker.clock'],
  ])('rejects %j at %s', (options, path) => {
    expect(configError(options).problems.map((p) => p.path)).toContain(path);
  });

  it('rejects impossible combinations', () => {
    expect(
      configError({ failureRate: 0.5, window: { calls: 5 }, minimumCalls: 6 }).message,
    ).toContain('circuitBreaker.minimumCalls: expected integer ≤ window.calls (5)');
    expect(
      configError({ failureRate: 0.5, window: { calls: 2 }, halfOpenMaxCalls: 3 }).message,
    ).toContain('circuitBreaker.halfOpenMaxCalls: expected integer ≤ window.calls (2)');
    expect(configError({ consecutiveFailures: 3, window: { calls: 10 } }).problems[0]!.path).toBe(
      'circuitBreaker.window',
    );
    expect(configError({ minimumCalls: 10 }).problems[0]!.path).toBe('circuitBreaker.minimumCalls');
  });

  it('accepts durations as strings and an explicit Infinity half-open timeout', async () => {
    const { clock, breaker, failOnce } = setup({
      consecutiveFailures: 1,
      halfOpenAfter: '1.5s',
      halfOpenTimeout: Infinity,
    });
    await failOnce();
    await clock.advance(1500);
    expect(breaker.state).toBe('half-open');
  });
});
