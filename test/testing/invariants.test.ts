import { describe, expect, it } from 'vitest';
import type { CallContext, Operation, Step } from '../../src/core/context.js';
import { CircuitBreakerPolicy, dependency } from '../../src/index.js';
import {
  assertInvariants,
  breakerNeverCallsWhileOpen,
  bulkheadNeverExceeds,
  callsWithinBudget,
  faultyDependency,
  InvariantError,
  noUnhandledRejections,
  settlesExactlyOnce,
  trackConcurrency,
  VirtualClock,
} from '../../src/testing/index.js';

function thrown(f: () => void): InvariantError {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(InvariantError);
    return error as InvariantError;
  }
  throw new Error('expected an InvariantError');
}

/** A breaker with a bug: it lets every call through, whatever its state. */
class LeakyBreaker extends CircuitBreakerPolicy {
  override run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    return next.invoke(ctx, fn);
  }
}

describe('trackConcurrency / bulkheadNeverExceeds', () => {
  it('catches more calls running at once than the limit', async () => {
    const clock = new VirtualClock();
    const downstream = faultyDependency({ clock, latency: 100 });
    const check = bulkheadNeverExceeds(2, { clock });
    // No bulkhead at all: nothing keeps the third call out.
    const dep = dependency('unguarded', { clock });
    const fn = check.wrap(downstream.call);
    const calls = [dep.execute(fn), dep.execute(fn), dep.execute(fn)];
    await clock.runAll();
    await Promise.all(calls);
    expect(check.max).toBe(3);
    const error = thrown(() => check.assert());
    expect(error.invariant).toBe('bulkhead never exceeds its limit (2)');
    expect(error.message).toMatch(/call 3 started with 3 running \(limit 2\) at t=0/);
  });

  it('holds for a bulkhead with a queue, and counts an aborted call out at its abort', async () => {
    const clock = new VirtualClock();
    // Every call hangs until its attempt timeout aborts it; the queued ones then take the slots.
    const downstream = faultyDependency({ clock, hangs: 1 });
    const dep = dependency('guarded', {
      clock,
      budget: 1000,
      timeout: 100,
      retry: false,
      circuitBreaker: false,
      bulkhead: { maxConcurrent: 2, maxQueue: 10 },
    });
    const check = bulkheadNeverExceeds(2, { clock });
    const fn = check.wrap(downstream.call);
    const calls = Array.from({ length: 6 }, () => dep.execute(fn).catch((e: unknown) => e));
    await clock.runAll();
    await Promise.all(calls);
    expect(check.calls).toBe(6);
    expect(check.max).toBe(2);
    expect(check.inFlight).toBe(0);
    check.assert();
  });

  it('with countAbandoned, sees work that outlives its abort', async () => {
    const clock = new VirtualClock();
    const check = trackConcurrency({ limit: 1, countAbandoned: true, clock });
    // fn ignores its signal: the attempt timeout frees the bulkhead slot while fn still runs.
    const fn = check.wrap(() => clock.sleep(500));
    const dep = dependency('ignores-abort', {
      clock,
      budget: 1000,
      timeout: 100,
      retry: false,
      circuitBreaker: false,
      bulkhead: { maxConcurrent: 1, maxQueue: 1 },
    });
    const calls = [dep.execute(fn).catch(() => {}), dep.execute(fn).catch(() => {})];
    await clock.runAll();
    await Promise.all(calls);
    expect(check.max).toBe(2);
    expect(() => check.assert()).toThrow(InvariantError);
  });
});

describe('breakerNeverCallsWhileOpen', () => {
  it('catches a breaker that lets calls through while isolated', async () => {
    const clock = new VirtualClock();
    const breaker = new LeakyBreaker({ clock });
    breaker.isolate();
    const check = breakerNeverCallsWhileOpen(breaker, () => 'reached', { clock });
    await breaker.execute(check.fn);
    expect(check.calls).toBe(1);
    const error = thrown(() => check.assert());
    expect(error.invariant).toBe('the breaker never calls fn while open');
    expect(error.message).toMatch(/call passed on \(handoff 1\) while the breaker was isolated/);
    check.dispose();
  });

  it("catches it at fn's start with at: 'fn'", async () => {
    const clock = new VirtualClock();
    const breaker = new LeakyBreaker({ clock, consecutiveFailures: 1 });
    const check = breakerNeverCallsWhileOpen(
      breaker,
      () => Promise.reject(Object.assign(new Error('boom'), { status: 500 })),
      { at: 'fn', clock },
    );
    // The leaky breaker records nothing, so force it open by hand.
    breaker.isolate();
    await breaker.execute(check.fn).catch(() => {});
    expect(() => check.assert()).toThrow(/fn called \(call 1\) while the breaker was isolated/);
  });

  it('holds for a real breaker: open calls fail fast without reaching fn', async () => {
    const clock = new VirtualClock();
    const downstream = faultyDependency({ clock, latency: 10, failureRate: 1 });
    const dep = dependency('payments', {
      clock,
      circuitBreaker: { consecutiveFailures: 3, halfOpenAfter: 1000 },
    });
    const check = breakerNeverCallsWhileOpen(dep.breaker!, downstream.call, { clock });
    for (let i = 0; i < 40; i++) {
      dep.execute(check.fn).catch(() => {});
      await clock.advance(100);
    }
    // 3 to trip, then one trial per second for the remaining ~3.7 s.
    expect(check.calls).toBeLessThanOrEqual(7);
    expect(check.handoffs).toBe(check.calls);
    check.assert();
    check.dispose();
    expect(Object.prototype.hasOwnProperty.call(dep.breaker, 'run')).toBe(false);
    expect(Object.prototype.hasOwnProperty.call(dep.breaker, 'runAt')).toBe(false);
    expect(Object.prototype.hasOwnProperty.call(dep.breaker, 'runHandled')).toBe(false);
  });

  it('does not flag a call the breaker admitted while closed that waited in the bulkhead queue', async () => {
    const scenario = async (at: 'handoff' | 'fn') => {
      const clock = new VirtualClock();
      // Call 1 fails at t=100 (opening the breaker); the others answer after 200 ms.
      let n = 0;
      const downstream = async () => {
        const i = ++n;
        await clock.sleep(i === 1 ? 100 : 200);
        if (i === 1) throw Object.assign(new Error('boom'), { status: 500 });
        return i;
      };
      const dep = dependency('queued', {
        clock,
        retry: false,
        circuitBreaker: {
          consecutiveFailures: 1,
          halfOpenAfter: 5000,
          whileOpen: { wait: false },
        },
        bulkhead: { maxConcurrent: 2, maxQueue: 2 },
      });
      const check = breakerNeverCallsWhileOpen(dep.breaker!, downstream, { at, clock });
      // 1 and 2 run, 3 and 4 wait; 3 starts when 1 fails, 4 when 2 answers at t=200.
      const calls = Array.from({ length: 4 }, () => dep.execute(check.fn).catch(() => {}));
      await clock.runAll();
      await Promise.all(calls);
      expect(dep.breaker!.state).toBe('open');
      expect(check.calls).toBe(4);
      check.dispose();
      return check;
    };
    // Call 4 reached fn after the breaker opened, but the breaker let it in while closed.
    (await scenario('handoff')).assert();
    // Checked at fn's start instead, the same run looks like a violation.
    const atFn = await scenario('fn');
    expect(atFn.violations).toEqual(['fn called (call 4) while the breaker was open at t=200']);
  });
});

describe('callsWithinBudget', () => {
  it('catches a call that runs past its budget, and one still running past it', async () => {
    const clock = new VirtualClock();
    const check = callsWithinBudget({ clock, tolerance: 5 });
    // A "budget" nobody enforces: the calls simply sleep.
    const late = check.track(100, () => clock.sleep(150));
    const ok = check.track(100, () => clock.sleep(104));
    void check.track(100, () => new Promise(() => {})); // never settles: still running at the end
    await clock.advance(200);
    await Promise.all([late, ok]);
    expect(check.worstOverrun).toBe(50);
    const error = thrown(() => check.assert());
    expect(error.invariant).toBe('no call exceeds its budget + 5 ms');
    expect(error.violations).toEqual([
      'call 1 took 150 ms, budget 100 ms (started t=0)',
      'call 3 still running after 200 ms, budget 100 ms',
    ]);
  });

  it('holds, with no tolerance, for calls through a budget on a VirtualClock', async () => {
    const clock = new VirtualClock();
    const downstream = faultyDependency({ clock, hangs: 1 });
    const dep = dependency('bounded', {
      clock,
      budget: 250,
      retry: { maxAttempts: 5, backoff: 10 },
    });
    const check = callsWithinBudget({ clock });
    const calls = [
      check.track(250, () => dep.execute(downstream.call)),
      check.track(80, () => dep.execute(downstream.call, { budget: 80 })),
    ].map((p) => p.catch((e: unknown) => e));
    await clock.runAll();
    await Promise.all(calls);
    expect(check.worstOverrun).toBe(0);
    check.assert();
  });

  it('returns the outcome of the call and leaves its rejection to the caller', async () => {
    const check = callsWithinBudget(10);
    const reason = new Error('x');
    await expect(check.track(100, () => Promise.reject(reason))).rejects.toBe(reason);
    await expect(check.track(100, () => Promise.resolve(7))).resolves.toBe(7);
    check.assert();
  });
});

describe('settlesExactlyOnce', () => {
  it('catches a thenable that settles twice and a call that never settles', async () => {
    const check = settlesExactlyOnce();
    const twice: PromiseLike<number> = {
      then(onFulfilled, onRejected) {
        onFulfilled?.(1);
        onRejected?.(new Error('and then failed'));
        return Promise.resolve() as never;
      },
    };
    await expect(check.track(twice, 'bridge')).resolves.toBe(1);
    void check.track(new Promise(() => {}), 'stuck');
    await check.track(Promise.resolve('fine'));
    expect(check.tracked).toBe(3);
    expect(check.pending).toBe(1);
    const error = thrown(() => check.assert());
    expect(error.invariant).toBe('every call settles exactly once');
    expect(error.violations).toEqual([
      'bridge settled 2 times (fulfilled, then rejected)',
      'stuck never settled',
    ]);
  });

  it('holds for calls through a dependency once the clock has run out', async () => {
    const clock = new VirtualClock();
    const downstream = faultyDependency({
      clock,
      latency: { p50: 20, p99: 400 },
      failureRate: 0.3,
      hangs: 0.2,
    });
    const dep = dependency('settles', {
      clock,
      budget: 500,
      retry: {},
      fallback: { value: 'cached' },
    });
    const check = settlesExactlyOnce();
    const calls = Array.from({ length: 20 }, () =>
      check.track(dep.execute(downstream.call)).catch(() => {}),
    );
    await clock.runAll();
    expect(check.settled).toBe(20);
    check.assert();
    await Promise.all(calls);
  });
});

describe('noUnhandledRejections', () => {
  it('catches a rejection nobody handled, and forgets one handled late', async () => {
    const check = noUnhandledRejections({ exclusive: true });
    try {
      void Promise.reject(new Error('dropped on the floor'));
      const late = Promise.reject(new Error('handled late'));
      await check.flush();
      late.catch(() => {});
      await check.flush();
      expect(check.rejections).toHaveLength(1);
      const error = thrown(() => check.assert());
      expect(error.invariant).toBe('no unhandled rejections');
      expect(error.violations).toEqual(['Error: dropped on the floor']);
    } finally {
      check.dispose();
    }
  });

  it('gives the other listeners back on dispose', () => {
    const before = process.listenerCount('unhandledRejection');
    const check = noUnhandledRejections({ exclusive: true });
    expect(process.listenerCount('unhandledRejection')).toBe(1);
    check.dispose();
    expect(process.listenerCount('unhandledRejection')).toBe(before);
  });

  it('holds when every rejection is handled', async () => {
    const check = noUnhandledRejections();
    try {
      await Promise.reject(new Error('handled')).catch(() => {});
      await check.flush();
      check.assert();
    } finally {
      check.dispose();
    }
  });
});

describe('assertInvariants', () => {
  it('lists every broken invariant in one error', () => {
    const a = bulkheadNeverExceeds(0);
    void a.wrap(() => 1)(undefined);
    const b = settlesExactlyOnce();
    void b.track(new Promise(() => {}));
    const c = callsWithinBudget();
    assertInvariants(c);
    const error = thrown(() => assertInvariants(a, b, c));
    expect(error.invariant).toBe(
      'bulkhead never exceeds its limit (0); every call settles exactly once',
    );
    expect(error.violations).toHaveLength(2);
    expect(error.message).toMatch(/bulkhead never exceeds its limit \(0\): call 1 started/);
    expect(error.message).toMatch(/every call settles exactly once: call 1 never settled/);
  });
});
