import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import {
  pipeline,
  retry,
  timeout,
  budget,
  TimeoutError,
  ConfigError,
  type Context,
  bulkhead,
  BulkheadRejectedError,
  circuitBreaker,
  CircuitOpenError,
} from '../../src/index.js';
import { deadlineTimersOf } from '../../src/core/deadline-timers.js';
import { VirtualClock } from '../../src/testing/index.js';

const never = () => new Promise<never>(() => {});

describe('execute and the call context', () => {
  it('gives fn a context with attempt 1, normal priority and no deadline by default', async () => {
    const clock = new VirtualClock();
    let seen: Context | undefined;
    const value = await pipeline(timeout(Infinity, { clock })).execute((ctx) => {
      seen = ctx;
      return 42;
    });
    expect(value).toBe(42);
    expect(seen!.attempt).toBe(1);
    expect(seen!.priority).toBe('normal');
    expect(seen!.deadline).toBe(Infinity);
    expect(seen!.remaining()).toBe(Infinity);
    expect(seen!.signal.aborted).toBe(false);
  });

  it('turns a synchronous throw into a rejection', async () => {
    const boom = new Error('boom');
    await expect(
      timeout(100).execute(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
  });

  it('sets the deadline from the budget option, on the policy clock', async () => {
    const clock = new VirtualClock({ start: 1000 });
    let seen: Context | undefined;
    await timeout(Infinity, { clock }).execute(
      (ctx) => {
        seen = ctx;
        return clock.advance(30).then(() => ctx.remaining());
      },
      { budget: 100 },
    );
    expect(seen!.deadline).toBe(1100);
  });

  it('rejects with a budget TimeoutError at the deadline even when fn ignores the signal', async () => {
    const clock = new VirtualClock();
    let signal: AbortSignal | undefined;
    const call = timeout(Infinity, { clock }).execute(
      (ctx) => {
        signal = ctx.signal;
        return never();
      },
      { budget: 50 },
    );
    const outcome = call.catch((e: unknown) => e);
    await clock.advance(49);
    expect(signal!.aborted).toBe(false);
    await clock.advance(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).scope).toBe('budget');
    expect(signal!.aborted).toBe(true);
    expect(signal!.reason).toBe(error);
  });

  it('remaining() counts down on the clock and never goes negative', async () => {
    const clock = new VirtualClock();
    let ctx: Context | undefined;
    const call = timeout(Infinity, { clock })
      .execute(
        (c) => {
          ctx = c;
          return never();
        },
        { budget: 100 },
      )
      .catch(() => undefined);
    await clock.advance(40);
    expect(ctx!.remaining()).toBe(60);
    await clock.advance(100);
    await call;
    expect(ctx!.remaining()).toBe(0);
  });

  it('honours an absolute deadline option', async () => {
    const clock = new VirtualClock({ start: 500 });
    const call = timeout(Infinity, { clock })
      .execute(never, { deadline: 520 })
      .catch((e: unknown) => e);
    await clock.advance(20);
    expect(await call).toBeInstanceOf(TimeoutError);
  });

  it('does not run fn when the budget is already spent', async () => {
    let ran = false;
    await expect(
      timeout(100).execute(
        () => {
          ran = true;
        },
        { budget: 0 },
      ),
    ).rejects.toBeInstanceOf(TimeoutError);
    expect(ran).toBe(false);
  });

  it('ends the call at once with the reason when the caller aborts', async () => {
    const controller = new AbortController();
    let inner: AbortSignal | undefined;
    const call = timeout(10_000).execute(
      (ctx) => {
        inner = ctx.signal;
        return never();
      },
      { signal: controller.signal },
    );
    const reason = new Error('caller gave up');
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(inner!.aborted).toBe(true);
    expect(inner!.reason).toBe(reason);
  });

  it('never calls fn when the caller signal is already aborted', async () => {
    let ran = false;
    const controller = new AbortController();
    controller.abort(new Error('already'));
    await expect(
      timeout(100).execute(
        () => {
          ran = true;
        },
        { signal: controller.signal },
      ),
    ).rejects.toThrow('already');
    expect(ran).toBe(false);
  });

  it('leaves no abort listener on a long-lived parent signal after 100,000 calls', async () => {
    const parent = new AbortController();
    const policy = timeout(1000);
    for (let i = 0; i < 100_000; i++) {
      await policy.execute(() => i, { signal: parent.signal, budget: 5000 });
    }
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
  });

  it('removes the deadline from the timer structure when the call settles early', async () => {
    const clock = new VirtualClock();
    const timers = deadlineTimersOf(clock);
    await timeout(100, { clock }).execute(async () => 1, { budget: 1000 });
    expect(timers.size).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('a nested call inherits the tighter outer deadline', async () => {
    const clock = new VirtualClock();
    const outer = timeout(Infinity, { clock });
    const inner = timeout(Infinity, { clock });
    let innerDeadline = 0;
    await outer.execute(
      (ctx) =>
        inner.execute(
          (c) => {
            innerDeadline = c.deadline;
          },
          { parent: ctx, budget: 5000 },
        ),
      { budget: 200 },
    );
    expect(innerDeadline).toBe(200);
  });

  it('a nested call ends when the outer call times out', async () => {
    const clock = new VirtualClock();
    const p = budget(100, { clock });
    let innerSignal: AbortSignal | undefined;
    const call = p
      .execute((ctx) =>
        p.execute(
          (c) => {
            innerSignal = c.signal;
            return never();
          },
          { parent: ctx },
        ),
      )
      .catch((e: unknown) => e);
    await clock.advance(100);
    expect(await call).toBeInstanceOf(TimeoutError);
    expect(innerSignal!.aborted).toBe(true);
  });

  it('keeps one idempotency key for every attempt, and uses the caller key when given', async () => {
    const keys: string[] = [];
    const policy = retry({ maxAttempts: 3, backoff: 0, retryOn: () => true });
    await policy
      .execute((ctx) => {
        keys.push(ctx.idempotencyKey);
        throw new Error('again');
      })
      .catch(() => {});
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    const given = await policy.execute((ctx) => ctx.idempotencyKey, { idempotencyKey: 'order-7' });
    expect(given).toBe('order-7');
  });

  it('a bare abort() before the call names the policy, keeping the reason as cause', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = (await pipeline(retry(), timeout(100))
      .execute(() => 1, { signal: controller.signal })
      .catch((e: unknown) => e)) as Error;
    expect(error.name).toBe('AbortError');
    expect(error.message).toBe(
      "pipeline: the caller's signal was already aborted; the call was not started",
    );
    expect(error.cause).toBe(controller.signal.reason);
  });

  it('rejects an unknown execute option (plain JS) with an error naming it', async () => {
    let ran = false;
    const error = (await timeout(100)
      .execute(
        () => {
          ran = true;
        },
        { timeout: 50 } as never,
      )
      .catch((e: unknown) => e)) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/^timeout: unknown option \(known: signal, budget, /m);
    expect(ran).toBe(false);
    await expect(pipeline(retry()).execute(() => 1, { budgt: 5 } as never)).rejects.toThrow(
      /^budgt: unknown option/m,
    );
  });

  it('reads the budget option as a duration, as config does', async () => {
    const clock = new VirtualClock();
    let deadline = 0;
    await timeout(10_000, { clock }).execute(
      (ctx) => {
        deadline = ctx.deadline;
      },
      { budget: '1s' },
    );
    expect(deadline).toBe(clock.now() + 1000);
    await expect(timeout(10).execute(() => 1, { budget: '1 fortnight' })).rejects.toThrow(
      /^budget: expected a duration/m,
    );
  });

  it('rejects bad execute options with a ConfigError naming the option', async () => {
    await expect(timeout(10).execute(() => 1, { budget: -5 })).rejects.toThrow(
      /budget: expected .* got -5/,
    );
    await expect(
      timeout(10).execute(() => 1, { priority: 'urgent' as never }),
    ).rejects.toBeInstanceOf(ConfigError);
    await expect(timeout(10).execute(42 as never)).rejects.toThrow(
      /execute\(fn\): expected a function/,
    );
  });

  it('runs every part on the first explicit clock, without writing it into the parts', async () => {
    const clock = new VirtualClock();
    const t = timeout(100);
    const r = retry({ maxAttempts: 1 });
    const p = pipeline(r, t, budget(10_000, { clock }));
    expect(p.clock).toBe(clock);
    expect(t.clock).toBeUndefined();
    expect(r.clock).toBeUndefined();
    const call = p.execute(never).catch((e: unknown) => e);
    await clock.advance(100);
    expect(await call).toBeInstanceOf(TimeoutError);
  });

  it('flattens nested pipelines', async () => {
    const clock = new VirtualClock();
    const inner = pipeline(timeout(50, { clock }));
    const outer = pipeline(retry({ maxAttempts: 2, backoff: 0 }), inner);
    expect(outer.policies).toHaveLength(2);
    let calls = 0;
    const call = outer
      .execute(() => {
        calls++;
        return never();
      })
      .catch((e: unknown) => e);
    await clock.advance(50);
    await clock.advance(50);
    expect(await call).toBeInstanceOf(TimeoutError);
    expect(calls).toBe(2);
  });
});

describe('pipeline() and the clock of its parts', () => {
  it('never writes its clock into a part: a shared policy serves each pipeline on its clock', async () => {
    const a = new VirtualClock();
    const b = new VirtualClock();
    const shared = bulkhead({ maxConcurrent: 1, maxQueue: 10, queueTimeout: 100 });
    const onA = pipeline(timeout(10_000, { clock: a }), shared);
    const onB = pipeline(timeout(10_000, { clock: b }), shared);
    expect(shared.clock).toBeUndefined();
    // Hold the one slot through A, then queue a call through B.
    let release!: () => void;
    const holder = onA.execute(() => new Promise<void>((r) => (release = r)));
    const queued = onB.execute(() => 'ran').catch((e: unknown) => e);
    // A's time does not expire B's waiter…
    await a.advance(150);
    // …B's time does.
    await b.advance(100);
    const rejected = await queued;
    expect(rejected).toBeInstanceOf(BulkheadRejectedError);
    expect((rejected as BulkheadRejectedError).reason).toBe('queue-timeout');
    release();
    await holder;
    expect(shared.clock).toBeUndefined();
  });

  it('does not keep the first pipeline clock in a shared breaker', async () => {
    const a = new VirtualClock({ start: 1_000 });
    const b = new VirtualClock({ start: 5_000_000 });
    const shared = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 1_000 });
    const onA = pipeline(timeout(10_000, { clock: a }), shared);
    const onB = pipeline(timeout(10_000, { clock: b }), shared);
    await onA.execute(() => 'ok');
    await expect(onB.execute(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
    // Opened at B's time: 1 s of B's time reopens it for a trial.
    await expect(onB.execute(() => 'x')).rejects.toBeInstanceOf(CircuitOpenError);
    await b.advance(1_000);
    expect(await onB.execute(() => 'trial')).toBe('trial');
    expect(shared.clock).toBeUndefined();
  });
});
