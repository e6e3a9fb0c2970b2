import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, pipeline, timeout, TimeoutError, type Context } from '../../src/index.js';
import { hedge, HedgePolicy } from '../../src/policies/hedge.js';
import { VirtualClock } from '../../src/testing/index.js';

let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(async () => {
  // Give a stray rejection the turn it needs to be reported before checking.
  await new Promise((r) => setImmediate(r));
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

/** An error as an HTTP client throws it, carrying the response's status. */
function statusError(message: string, status: number): Error {
  return Object.assign(new Error(message), { status });
}

/**
 * Attempts that answer (or fail) after a given virtual delay each, ignoring their signal.
 * `fail: true` fails as a 503 would (retryable); `fail: 400` with that status.
 */
function attempts(clock: VirtualClock, plan: { after: number; fail?: boolean | number }[]) {
  const seen: Context[] = [];
  const fn = (ctx: Context) => {
    const i = seen.length;
    seen.push(ctx);
    const step = plan[i]!;
    return clock.sleep(step.after).then(() => {
      if (step.fail !== undefined && step.fail !== false)
        throw statusError(`attempt ${i + 1} failed`, step.fail === true ? 503 : step.fail);
      return `answer ${i + 1}`;
    });
  };
  return { fn, seen };
}

describe('hedge', () => {
  it('starts another attempt after delay without an answer; the first success wins and the loser is aborted', async () => {
    const clock = new VirtualClock();
    const { fn, seen } = attempts(clock, [{ after: 500 }, { after: 50 }]);
    const call = hedge({ delay: 100, clock }).execute(fn);
    await clock.advance(99);
    expect(seen).toHaveLength(1);
    await clock.advance(1);
    expect(seen).toHaveLength(2);
    await clock.advance(50);
    expect(await call).toBe('answer 2');
    const lost = seen[0]!.signal;
    expect(lost.aborted).toBe(true);
    expect((lost.reason as DOMException).name).toBe('AbortError');
    expect((lost.reason as DOMException).message).toMatch(/another attempt answered first/);
    expect(seen[1]!.signal.aborted).toBe(false);
    await clock.runAll();
  });

  it('does not hedge when the first attempt answers within delay, and leaves no timer behind', async () => {
    const clock = new VirtualClock();
    const { fn, seen } = attempts(clock, [{ after: 30 }]);
    const call = hedge({ delay: 100, clock }).execute(fn);
    await clock.advance(30);
    expect(await call).toBe('answer 1');
    // On a VirtualClock the policy's one hedge timer is cleared as soon as no call waits.
    expect(clock.pending).toBe(0);
    await clock.advance(100);
    expect(seen).toHaveLength(1);
  });

  it('serves many concurrent calls with one timer, hedging each one delay after its own start', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ delay: 100, clock });
    const starts: number[] = [];
    policy.on('hedge', () => starts.push(clock.now()));
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 5; i++) {
      // Call 2 answers before its delay; every other call needs its hedge.
      calls.push(policy.execute(() => clock.sleep(i === 2 ? 50 : 1000).then(() => i)));
      expect(clock.pending - (i + 1)).toBeLessThanOrEqual(1); // one sleep per call + at most one hedge timer
      await clock.advance(10);
    }
    await clock.advance(200);
    expect(starts).toEqual([100, 110, 130, 140]);
    await clock.runAll();
    expect(await Promise.all(calls)).toEqual([0, 1, 2, 3, 4]);
  });

  it('starts at most maxHedges extra attempts, one per delay', async () => {
    const clock = new VirtualClock();
    const { fn, seen } = attempts(clock, [
      { after: 1000 },
      { after: 1000 },
      { after: 1000 },
      { after: 1000 },
    ]);
    const starts: number[] = [];
    const policy = hedge({ delay: '100ms', maxHedges: 2, clock });
    policy.on('hedge', () => starts.push(clock.now()));
    const call = policy.execute(fn);
    await clock.advance(500);
    expect(seen).toHaveLength(3);
    expect(starts).toEqual([100, 200]);
    await clock.advance(500);
    expect(await call).toBe('answer 1');
    expect(seen[1]!.signal.aborted && seen[2]!.signal.aborted).toBe(true);
  });

  it('keeps a single hedge timer while calls hedge again and again', async () => {
    const clock = new VirtualClock();
    const policy = hedge({ delay: 100, maxHedges: 3, clock });
    let started = 0;
    const hang = () => {
      started++;
      return new Promise<never>(() => {});
    };
    for (let i = 0; i < 5; i++) {
      void policy.execute(hang);
      await clock.advance(10);
    }
    for (let t = 0; t < 40; t++) {
      expect(clock.pending).toBeLessThanOrEqual(1);
      await clock.advance(10);
    }
    expect(started).toBe(5 * 4);
    expect(clock.pending).toBe(0);
  });

  it('on the system clock, keeps the process alive only while a call waits for its hedge', async () => {
    const policy = hedge({ delay: 60_000 });
    const timer = () =>
      (policy as unknown as { races: { timer: NodeJS.Timeout | undefined } }).races.timer;
    let answer!: (v: string) => void;
    const call = policy.execute(() => new Promise<string>((r) => (answer = r)));
    expect(timer()!.hasRef()).toBe(true);
    answer('done');
    expect(await call).toBe('done');
    expect(timer()!.hasRef()).toBe(false);
    clearTimeout(timer());
  });

  it('starts the next hedge at once when an attempt fails before delay', async () => {
    const clock = new VirtualClock();
    const { fn, seen } = attempts(clock, [{ after: 10, fail: true }, { after: 20 }]);
    const events: unknown[] = [];
    const policy = hedge({ delay: 100, clock });
    policy.on('hedge', (e) => events.push(e));
    const call = policy.execute(fn);
    await clock.advance(10);
    expect(seen).toHaveLength(2);
    await clock.advance(20);
    expect(await call).toBe('answer 2');
    expect(events).toEqual([{ attempt: 2, reason: 'failure' }]);
  });

  it('rejects with the last failure when every attempt fails', async () => {
    const clock = new VirtualClock();
    const { fn, seen } = attempts(clock, [
      { after: 300, fail: true },
      { after: 100, fail: true },
    ]);
    const call = hedge({ delay: 100, clock })
      .execute(fn)
      .catch((e: unknown) => e);
    await clock.advance(300);
    // Attempt 2 failed at 200, attempt 1 at 300: the last failure is attempt 1's.
    expect(((await call) as Error).message).toBe('attempt 1 failed');
    expect(seen).toHaveLength(2);
    expect(clock.pending).toBe(0);
  });

  it('waits for an attempt still running when another one fails and no hedge is left', async () => {
    const clock = new VirtualClock();
    const { fn } = attempts(clock, [{ after: 300 }, { after: 50, fail: true }]);
    const call = hedge({ delay: 100, clock }).execute(fn);
    await clock.advance(300);
    expect(await call).toBe('answer 1');
  });

  it('hedges only on failure when delay is Infinity', async () => {
    const clock = new VirtualClock();
    const { fn, seen } = attempts(clock, [{ after: 5000, fail: true }, { after: 10 }]);
    const call = hedge({ delay: Infinity, clock }).execute(fn);
    await clock.advance(4999);
    expect(seen).toHaveLength(1);
    await clock.advance(11);
    expect(await call).toBe('answer 2');
  });

  it('gives every attempt its own signal and the same idempotency key', async () => {
    const clock = new VirtualClock();
    const { fn, seen } = attempts(clock, [{ after: 1000 }, { after: 1000 }, { after: 10 }]);
    const call = hedge({ delay: 100, maxHedges: 2, clock }).execute(fn);
    await clock.advance(210);
    expect(await call).toBe('answer 3');
    expect(new Set(seen.map((c) => c.signal)).size).toBe(3);
    expect(new Set(seen.map((c) => c.idempotencyKey)).size).toBe(1);
    expect(seen.map((c) => c.signal.aborted)).toEqual([true, true, false]);
  });

  it('ends every attempt and stops hedging when the call deadline passes', async () => {
    const clock = new VirtualClock();
    const { fn, seen } = attempts(clock, [{ after: 1000 }, { after: 1000 }, { after: 1000 }]);
    const call = hedge({ delay: 100, maxHedges: 2, clock })
      .execute(fn, { budget: 150 })
      .catch((e: unknown) => e);
    await clock.advance(150);
    expect(await call).toBeInstanceOf(TimeoutError);
    await clock.advance(500);
    expect(seen).toHaveLength(2);
    expect(seen.every((c) => c.signal.aborted && c.signal.reason instanceof TimeoutError)).toBe(
      true,
    );
  });

  it('is bounded as a whole by an attempt timeout outside it', async () => {
    const clock = new VirtualClock();
    const { fn, seen } = attempts(clock, [{ after: 1000 }, { after: 1000 }]);
    const call = pipeline(timeout(250, { clock }), hedge({ delay: 100 }))
      .execute(fn)
      .catch((e: unknown) => e);
    await clock.advance(250);
    expect(((await call) as TimeoutError).scope).toBe('attempt');
    expect(seen.every((c) => c.signal.aborted)).toBe(true);
    await clock.runAll();
  });

  it('ends the race with the caller reason when the caller aborts', async () => {
    const clock = new VirtualClock();
    const { fn, seen } = attempts(clock, [{ after: 1000 }, { after: 1000 }]);
    const controller = new AbortController();
    const call = hedge({ delay: 100, clock })
      .execute(fn, { signal: controller.signal })
      .catch((e: unknown) => e);
    await clock.advance(120);
    const reason = new Error('caller left');
    controller.abort(reason);
    expect(await call).toBe(reason);
    expect(seen.every((c) => c.signal.reason === reason)).toBe(true);
    await clock.advance(100);
    expect(seen).toHaveLength(2);
    await clock.runAll();
  });

  it('leaves no unhandled rejection when losers fail after the winner', async () => {
    const clock = new VirtualClock();
    const { fn } = attempts(clock, [
      { after: 400, fail: true },
      { after: 10 },
      { after: 300, fail: true },
    ]);
    const call = hedge({ delay: 100, maxHedges: 2, clock }).execute(fn);
    await clock.advance(110);
    expect(await call).toBe('answer 2');
    await clock.runAll();
    // afterEach asserts that no rejection went unhandled.
  });

  it('emits hedge and win events', async () => {
    const clock = new VirtualClock();
    const { fn } = attempts(clock, [{ after: 500 }, { after: 500 }, { after: 10 }]);
    const policy = hedge({ delay: 100, maxHedges: 2, clock });
    const events: unknown[] = [];
    policy.on('hedge', (e) => events.push({ hedge: e }));
    policy.on('win', (e) => events.push({ win: e }));
    const call = policy.execute(fn);
    await clock.advance(210);
    await call;
    expect(events).toEqual([
      { hedge: { attempt: 2, reason: 'delay' } },
      { hedge: { attempt: 3, reason: 'delay' } },
      { win: { attempt: 3, started: 3 } },
    ]);
    await clock.runAll();
  });

  it('runs fn once, without a race, when maxHedges is 0', async () => {
    const clock = new VirtualClock();
    const { fn, seen } = attempts(clock, [{ after: 1000 }]);
    const call = hedge({ delay: 10, maxHedges: 0, clock }).execute(fn);
    await clock.advance(1000);
    expect(await call).toBe('answer 1');
    expect(seen).toHaveLength(1);
  });

  it('ends the call with a non-retryable failure instead of sending the request again', async () => {
    const clock = new VirtualClock();
    const { fn, seen } = attempts(clock, [{ after: 10, fail: 400 }, { after: 20 }]);
    const events: unknown[] = [];
    const policy = hedge({ delay: 100, clock });
    policy.on('hedge', (e) => events.push(e));
    const call = policy.execute(fn).catch((e: unknown) => e);
    await clock.advance(10);
    const error = (await call) as Error & { status: number };
    expect(error.status).toBe(400);
    expect(error.message).toBe('attempt 1 failed');
    await clock.advance(500);
    expect(seen).toHaveLength(1);
    expect(events).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('a hedge failing non-retryably ends the call and aborts the attempt still running', async () => {
    const clock = new VirtualClock();
    const { fn, seen } = attempts(clock, [{ after: 1000 }, { after: 10, fail: 422 }, { after: 1 }]);
    const call = hedge({ delay: 100, maxHedges: 2, clock })
      .execute(fn)
      .catch((e: unknown) => e);
    await clock.advance(110);
    expect(((await call) as { status: number }).status).toBe(422);
    expect(seen).toHaveLength(2);
    expect(seen[0]!.signal.aborted).toBe(true);
    await clock.advance(1000);
    expect(seen).toHaveLength(2);
    await clock.runAll();
  });

  it('does not re-send after a plain Error (not known to be transient)', async () => {
    const clock = new VirtualClock();
    let runs = 0;
    const policy = hedge({ delay: 100, clock });
    const plain = policy
      .execute(() => {
        runs++;
        return Promise.reject(new Error('invalid card number'));
      })
      .catch((e: unknown) => e);
    expect(((await plain) as Error).message).toBe('invalid card number');
    await clock.advance(200);
    expect(runs).toBe(1);
  });

  it('hedgeOn decides which failures start the next attempt', async () => {
    const clock = new VirtualClock();
    const { fn, seen } = attempts(clock, [{ after: 10, fail: 409 }, { after: 20 }]);
    const asked: unknown[] = [];
    const policy = hedge({
      delay: 100,
      clock,
      hedgeOn: (error, ctx) => {
        asked.push([(error as { status: number }).status, ctx.attempt]);
        return (error as { status: number }).status === 409;
      },
    });
    const call = policy.execute(fn);
    await clock.advance(30);
    expect(await call).toBe('answer 2');
    expect(seen).toHaveLength(2);
    expect(asked).toEqual([[409, 1]]);
  });

  it('a retryable failure still starts the next attempt at once (ECONNRESET, 503, attempt timeout)', async () => {
    for (const error of [
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      statusError('unavailable', 503),
      new TimeoutError('attempt', 50),
    ]) {
      const clock = new VirtualClock();
      let runs = 0;
      const call = hedge({ delay: Infinity, clock }).execute(() =>
        ++runs === 1 ? Promise.reject(error) : Promise.resolve('second'),
      );
      expect(await call).toBe('second');
      expect(runs).toBe(2);
    }
  });

  it('rejects bad options with a ConfigError naming the path', () => {
    expect(() => hedge({ delay: 10, hedgeOn: 'yes' as never })).toThrow(
      /^hedge\.hedgeOn: expected a function/,
    );
    expect(() => hedge({} as never)).toThrow(ConfigError);
    expect(() => hedge({} as never)).toThrow(/^hedge\.delay: expected a duration/);
    expect(() => hedge({ delay: 10, maxHedges: -1 })).toThrow(
      'hedge.maxHedges: expected integer ≥ 0, got -1',
    );
    expect(() => hedge({ delay: 'soon' })).toThrow(/hedge\.delay: expected .* got "soon"/);
    expect(() => new HedgePolicy({ delay: -5 }, 'search.hedge')).toThrow(/^search\.hedge\.delay: /);
  });
});
