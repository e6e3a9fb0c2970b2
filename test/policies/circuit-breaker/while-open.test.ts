import { describe, expect, it } from 'vitest';
import { CircuitOpenError, ConfigError, TimeoutError } from '../../../src/index.js';
import {
  circuitBreaker,
  MIN_ATTEMPT_MS,
} from '../../../src/policies/circuit-breaker/circuit-breaker.js';
import type { CircuitBreakerOptions } from '../../../src/policies/circuit-breaker/options.js';
import { VirtualClock } from '../../../src/testing/index.js';

const boom = new Error('boom');

/** A breaker that opens on 1 failure, stays open 100 ms, lets waiters wait. */
function setup(options: Omit<CircuitBreakerOptions, 'clock'> = {}) {
  const clock = new VirtualClock();
  const breaker = circuitBreaker({
    consecutiveFailures: 1,
    halfOpenAfter: 100,
    slowStart: false,
    whileOpen: { wait: true },
    ...options,
    clock,
  });
  let healthy = false;
  let calls = 0;
  const dep = () => {
    calls++;
    if (!healthy) throw boom;
    return 'ok';
  };
  const trip = () => breaker.execute(dep).catch(() => undefined);
  return {
    clock,
    breaker,
    dep,
    trip,
    heal: () => (healthy = true),
    sicken: () => (healthy = false),
    calls: () => calls,
  };
}

/** Settles a promise into a plain record, so a test can look at it without awaiting. */
function track<T>(p: Promise<T>) {
  const r: { done: boolean; value?: T; error?: unknown } = { done: false };
  p.then(
    (value) => Object.assign(r, { done: true, value }),
    (error: unknown) => Object.assign(r, { done: true, error }),
  );
  return r;
}

describe('circuit breaker: waiting while open', () => {
  it('fails at once while open when waiting is off (the default)', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ consecutiveFailures: 1, clock });
    await breaker.execute(() => Promise.reject(boom)).catch(() => undefined);
    await expect(breaker.execute(() => 'ok', { budget: 10_000 })).rejects.toBeInstanceOf(
      CircuitOpenError,
    );
  });

  it('waits for the trial and gets through once the dependency is back', async () => {
    const t = setup();
    await t.trip();
    t.heal();
    const waiting = track(t.breaker.execute(t.dep, { budget: 1000 }));
    await t.clock.advance(50);
    expect(waiting.done).toBe(false);
    expect(t.breaker.waiting).toBe(1);
    await t.clock.advance(50);
    expect(waiting).toEqual({ done: true, value: 'ok' });
    expect(t.breaker.state).toBe('closed');
    expect(t.breaker.waiting).toBe(0);
    expect(t.clock.pending).toBe(0);
  });

  it('releases every waiter when the trial succeeds, the trial being the first in line', async () => {
    const t = setup();
    await t.trip();
    t.heal();
    const before = t.calls();
    const all = Array.from({ length: 5 }, () => track(t.breaker.execute(t.dep, { budget: 1000 })));
    await t.clock.advance(100);
    expect(all.every((r) => r.done && r.value === 'ok')).toBe(true);
    expect(t.calls() - before).toBe(5);
  });

  it('fails at once a call whose budget does not cover the wait plus a minimum attempt', async () => {
    const t = setup();
    await t.trip();
    const short = track(t.breaker.execute(t.dep, { budget: 100 + MIN_ATTEMPT_MS - 1 }));
    await t.clock.advance(0);
    expect(short.error).toBeInstanceOf(CircuitOpenError);
    const enough = track(t.breaker.execute(t.dep, { budget: 100 + MIN_ATTEMPT_MS }));
    await t.clock.advance(0);
    expect(enough.done).toBe(false);
  });

  it('when the trial fails, keeps those who can make the next trial and fails the others at once', async () => {
    const t = setup({ halfOpenAfter: { initial: 100, multiplier: 2, max: 1000 } });
    await t.trip(); // open until 100; the next open period is 200 ms
    const long = track(t.breaker.execute(t.dep, { budget: 1000 }));
    const short = track(t.breaker.execute(t.dep, { budget: 250 }));
    await t.clock.advance(100); // the trial (long, first in line) fails: open until 300
    expect(long.error).toBe(boom);
    expect(short.error).toBeInstanceOf(CircuitOpenError);
    expect((short.error as CircuitOpenError).state).toBe('open');

    const t2 = setup({ halfOpenAfter: { initial: 100, multiplier: 2, max: 1000 } });
    await t2.trip();
    const first = track(t2.breaker.execute(t2.dep, { budget: 1000 }));
    const second = track(t2.breaker.execute(t2.dep, { budget: 1000 }));
    await t2.clock.advance(100);
    expect(first.error).toBe(boom);
    expect(second.done).toBe(false); // waits for the trial at 300
    t2.heal();
    await t2.clock.advance(200);
    expect(second).toEqual({ done: true, value: 'ok' });
  });

  it('never holds a waiter past its deadline', async () => {
    const t = setup({ halfOpenAfter: 100 });
    await t.trip();
    // The trial hangs: the waiter behind it can only end at its deadline.
    let hung = 0;
    const hang = () => {
      hung++;
      return new Promise<never>(() => {});
    };
    const trial = track(t.breaker.execute(hang, { budget: 1000 }));
    const waiter = track(t.breaker.execute(t.dep, { budget: 400 }));
    await t.clock.advance(399);
    expect(hung).toBe(1);
    expect(waiter.done).toBe(false);
    await t.clock.advance(1);
    expect(waiter.error).toBeInstanceOf(TimeoutError);
    expect(t.breaker.waiting).toBe(0);
    await t.clock.advance(600);
    expect(trial.error).toBeInstanceOf(TimeoutError);
  });

  it('lets an aborted waiter leave at once, leaving no timer behind', async () => {
    const t = setup();
    await t.trip();
    const controller = new AbortController();
    const waiter = track(t.breaker.execute(t.dep, { signal: controller.signal }));
    await t.clock.advance(10);
    expect(t.clock.pending).toBe(1);
    controller.abort(new Error('caller gone'));
    await t.clock.advance(0);
    expect((waiter.error as Error).message).toBe('caller gone');
    expect(t.breaker.waiting).toBe(0);
    expect(t.clock.pending).toBe(0);
  });

  it('fails the call over maxQueue at once', async () => {
    const t = setup({ whileOpen: { wait: true, maxQueue: 2 } });
    await t.trip();
    const a = track(t.breaker.execute(t.dep, { budget: 1000 }));
    const b = track(t.breaker.execute(t.dep, { budget: 1000 }));
    const c = track(t.breaker.execute(t.dep, { budget: 1000 }));
    await t.clock.advance(0);
    expect(a.done || b.done).toBe(false);
    expect(c.error).toBeInstanceOf(CircuitOpenError);
    expect(t.breaker.waiting).toBe(2);
  });

  it('gives up after maxWait, and does not queue a call whose wait would exceed it', async () => {
    const t = setup({ halfOpenAfter: 1000, whileOpen: { wait: true, maxWait: 500 } });
    await t.trip();
    const tooLong = track(t.breaker.execute(t.dep));
    await t.clock.advance(0);
    expect(tooLong.error).toBeInstanceOf(CircuitOpenError);
    await t.clock.advance(600); // 400 ms left of the open period
    const fits = track(t.breaker.execute(() => new Promise<never>(() => {})));
    const behind = track(t.breaker.execute(t.dep));
    await t.clock.advance(400); // fits becomes the (hanging) trial; behind waits on
    expect(fits.done).toBe(false);
    expect(behind.done).toBe(false);
    await t.clock.advance(100);
    expect(behind.error).toBeInstanceOf(CircuitOpenError);
  });

  it('keeps one clock timer for any number of waiters', async () => {
    const t = setup({ halfOpenAfter: 1000 });
    await t.trip();
    const waiters = Array.from({ length: 200 }, () => track(t.breaker.execute(t.dep)));
    await t.clock.advance(1);
    expect(t.breaker.waiting).toBe(200);
    expect(t.clock.pending).toBe(1);
    t.heal();
    await t.clock.advance(1000);
    expect(waiters.every((w) => w.value === 'ok')).toBe(true);
    expect(t.clock.pending).toBe(0);
  });

  it('fails the waiters when an operator isolates the breaker', async () => {
    const t = setup();
    await t.trip();
    const waiter = track(t.breaker.execute(t.dep, { budget: 1000 }));
    await t.clock.advance(10);
    const handle = t.breaker.isolate();
    await t.clock.advance(0);
    expect((waiter.error as CircuitOpenError).state).toBe('isolated');
    handle.release();
  });

  it('validates whileOpen and slowStart, naming the path', () => {
    const problems = (o: unknown) => {
      try {
        circuitBreaker(o as CircuitBreakerOptions);
        return [];
      } catch (error) {
        return (error as ConfigError).problems.map((p) => p.path);
      }
    };
    expect(problems({ whileOpen: { wait: 'yes' } })).toEqual(['circuitBreaker.whileOpen.wait']);
    expect(problems({ whileOpen: { maxQueue: -1 } })).toEqual([
      'circuitBreaker.whileOpen.maxQueue',
    ]);
    expect(problems({ whileOpen: { maxWait: 'soon' } })).toEqual([
      'circuitBreaker.whileOpen.maxWait',
    ]);
    expect(problems({ whileOpen: { other: 1 } })).toEqual(['circuitBreaker.whileOpen.other']);
    expect(problems({ slowStart: true })).toEqual(['circuitBreaker.slowStart']);
    expect(problems({ slowStart: { window: -5 } })).toEqual(['circuitBreaker.slowStart.window']);
    expect(problems({ slowStart: false, whileOpen: { wait: false } })).toEqual([]);
    expect(() => circuitBreaker({ whileOpen: 3 } as never)).toThrow(ConfigError);
  });
});

describe('circuit breaker: waiting during slow start', () => {
  it('holds a call back past maxWait while the ramp grows, but never past its deadline', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      consecutiveFailures: 1,
      halfOpenAfter: 100,
      whileOpen: { wait: true, maxWait: 50 },
      slowStart: { window: 10_000 },
      clock,
    });
    await breaker.execute(() => Promise.reject(boom)).catch(() => undefined);
    await clock.advance(100);
    await breaker.execute(() => 'trial'); // closed; the ramp admits 10 % at first
    const held = Array.from({ length: 5 }, () =>
      track(breaker.execute(() => 'ok', { budget: 5000 })),
    );
    await clock.advance(0);
    expect(held[0]).toMatchObject({ done: true, value: 'ok' }); // the ramp's first call
    expect(breaker.waiting).toBe(4);
    await clock.advance(100); // past maxWait: still held, not failed
    expect(breaker.waiting).toBe(4);
    // 2 of 5 offered may be admitted once the share reaches 40 %: at 1/3 of the window.
    await clock.advance(3300);
    expect(held.filter((h) => h.value === 'ok')).toHaveLength(2);
    await clock.advance(1600); // the deadline (5 s) comes before a share of 60 %
    expect(held.slice(2).every((h) => h.error instanceof TimeoutError)).toBe(true);
    expect(breaker.waiting).toBe(0);
    expect(clock.pending).toBe(0);
  });
});
