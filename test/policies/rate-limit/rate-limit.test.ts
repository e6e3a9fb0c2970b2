import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  MemoryRateLimitStore,
  RateLimitError,
  TimeoutError,
  isBulwarkError,
  pipeline,
  rateLimit,
  retry,
} from '../../../src/index.js';
import { isRetryableError } from '../../../src/policies/retry/classification.js';
import { VirtualClock } from '../../../src/testing/index.js';
import { collectUnhandledRejections } from '../../support/async.js';

const unhandled = collectUnhandledRejections();

const outcome = (p: Promise<unknown>) =>
  p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );

describe('rateLimit', () => {
  it('admits rate + burst calls at once and refuses the next with a stackless RateLimitError', async () => {
    const clock = new VirtualClock();
    const limiter = rateLimit({ rate: 10, per: '1s', burst: 2, name: 'payments', clock });
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) => outcome(limiter.execute(() => i))),
    );
    expect(results.slice(0, 3)).toEqual([{ value: 0 }, { value: 1 }, { value: 2 }]);
    const { error } = results[3] as { error: RateLimitError };
    expect(error).toBeInstanceOf(RateLimitError);
    expect(isBulwarkError(error)).toBe(true);
    expect(error.code).toBe('ERR_RATE_LIMITED');
    expect(error.name).toBe('RateLimitError');
    // Three slots taken at t=0: the next is at 3 intervals − 2 burst intervals = 100 ms.
    expect(error.retryAfterMs).toBe(100);
    expect(error.message).toBe(
      'payments: rate limit of 10 per 1 s (+2 burst) reached; next slot in 100 ms',
    );
    expect(error.stack?.split('\n').length).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it('admits again once an interval has passed, at the steady rate', async () => {
    const clock = new VirtualClock();
    const limiter = rateLimit({ rate: 4, per: 1000, clock });
    await limiter.execute(() => 1);
    await expect(limiter.execute(() => 2)).rejects.toThrow(
      /^rate limit of 4 per 1 s reached; next slot in 250 ms$/,
    );
    await clock.advance(249);
    await expect(limiter.execute(() => 3)).rejects.toMatchObject({ retryAfterMs: 1 });
    await clock.advance(1);
    expect(await limiter.execute(() => 4)).toBe(4);
  });

  it('paces calls with wait, one interval apart, on a single clock timer', async () => {
    const clock = new VirtualClock();
    const limiter = rateLimit({ rate: 10, wait: '1s', clock });
    const starts: number[] = [];
    const calls = Array.from({ length: 5 }, () =>
      limiter.execute(() => {
        starts.push(clock.now());
      }),
    );
    expect(limiter.waiting).toBe(4);
    expect(clock.pending).toBe(1);
    await clock.advance(1000);
    await Promise.all(calls);
    expect(starts).toEqual([0, 100, 200, 300, 400]);
    expect(limiter.waiting).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('refuses at once a call whose wait exceeds wait or its own budget, never after the deadline', async () => {
    const clock = new VirtualClock();
    const limiter = rateLimit({ rate: 10, wait: 250, clock });
    await limiter.execute(() => 0);
    const paced = limiter.execute(() => clock.now());
    // The next slot is 200 ms away: a 150 ms budget cannot cover it.
    const short = outcome(limiter.execute(() => 'never', { budget: 150 }));
    await Promise.resolve();
    expect(await short).toEqual({ error: expect.any(RateLimitError) });
    expect(clock.now()).toBe(0);
    // Without a budget it is held for the slot at 200 ms; the one after, at 300 ms, exceeds wait.
    const second = limiter.execute(() => clock.now());
    await expect(limiter.execute(() => 'never')).rejects.toMatchObject({ retryAfterMs: 300 });
    await clock.advance(200);
    expect([await paced, await second]).toEqual([100, 200]);
  });

  it('gives a paced call’s slot back when it aborts, so the calls behind it move up', async () => {
    const clock = new VirtualClock();
    const limiter = rateLimit({ rate: 10, wait: '10s', clock });
    const starts: Record<string, number> = {};
    const run = (name: string, signal?: AbortSignal) =>
      limiter.execute(
        () => {
          starts[name] = clock.now();
        },
        { signal },
      );
    await run('a');
    const controller = new AbortController();
    const b = outcome(run('b', controller.signal));
    const c = run('c');
    const d = run('d');
    await clock.advance(50);
    controller.abort(new Error('caller left'));
    expect(await b).toEqual({ error: new Error('caller left') });
    expect(limiter.waiting).toBe(2);
    await clock.advance(1000);
    await Promise.all([c, d]);
    expect(starts).toEqual({ a: 0, c: 100, d: 200 });
    // The slot b gave back is not handed out twice: the next call comes after d.
    const e = limiter.execute(() => clock.now());
    expect(await e).toBe(1050);
  });

  it('holds a call only when its slot comes strictly before its deadline', async () => {
    const clock = new VirtualClock();
    const limiter = rateLimit({ rate: 1, per: 100, wait: 1000, clock });
    const p = pipeline(limiter);
    await p.execute(() => 0);
    // The deadline comes before the slot would: it is refused at once rather than held.
    await expect(p.execute(() => 1, { budget: 100 })).rejects.toBeInstanceOf(RateLimitError);
    const held = outcome(p.execute(() => 2, { budget: 150 }));
    const next = p.execute(() => clock.now());
    expect(limiter.waiting).toBe(2);
    await clock.advance(100);
    expect(await held).toEqual({ value: 2 });
    await clock.advance(100);
    expect(await next).toBe(200);
  });

  it('is not retried: a local refusal, like a full bulkhead', async () => {
    const clock = new VirtualClock();
    let runs = 0;
    const p = pipeline(retry({ maxAttempts: 5, backoff: 0 }), rateLimit({ rate: 1, clock }));
    await p.execute(() => runs++);
    await expect(p.execute(() => runs++)).rejects.toBeInstanceOf(RateLimitError);
    expect(runs).toBe(1);
    expect(isRetryableError(new RateLimitError('x', 5))).toBe(false);
  });

  it('shares one limit between policies through a memory store', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateLimitStore();
    const a = rateLimit({ rate: 2, name: 'shared', store, clock });
    const b = rateLimit({ rate: 2, name: 'shared', store, clock });
    const other = rateLimit({ rate: 2, name: 'other', store, clock });
    expect(await a.execute(() => 'a')).toBe('a');
    await expect(b.execute(() => 'b')).rejects.toBeInstanceOf(RateLimitError);
    expect(await other.execute(() => 'o')).toBe('o');
    expect(store.size).toBe(2);
  });

  it('paces through a store, one timer for all, and gives the newest reservation back on abort', async () => {
    const clock = new VirtualClock();
    const store = new MemoryRateLimitStore();
    const limiter = rateLimit({ rate: 10, wait: '1s', store, clock });
    const starts: number[] = [];
    await limiter.execute(() => starts.push(clock.now()));
    const controller = new AbortController();
    const b = limiter.execute(() => starts.push(clock.now()));
    const c = outcome(
      limiter.execute(() => starts.push(clock.now()), { signal: controller.signal }),
    );
    await Promise.resolve();
    expect(limiter.waiting).toBe(2);
    expect(clock.pending).toBe(1);
    controller.abort(new Error('gone'));
    expect(await c).toEqual({ error: new Error('gone') });
    const d = limiter.execute(() => starts.push(clock.now()));
    await clock.advance(1000);
    await Promise.all([b, d]);
    expect(starts).toEqual([0, 100, 200]);
  });

  it('validates its options with paths', () => {
    expect(() => rateLimit({} as never)).toThrow(ConfigError);
    expect(() => rateLimit({} as never)).toThrow('rateLimit.rate: expected a number > 0');
    expect(() => rateLimit({ rate: -1 })).toThrow('rateLimit.rate: expected a number > 0, got -1');
    expect(() => rateLimit({ rate: 1, per: 0 })).toThrow('rateLimit.per');
    expect(() => rateLimit({ rate: 1, burst: 1.5 })).toThrow('rateLimit.burst');
    expect(() => rateLimit({ rate: 1, wait: 'soon' })).toThrow('rateLimit.wait');
    expect(() => rateLimit({ rate: 1, store: {} as never })).toThrow('rateLimit.store');
    expect(() => rateLimit({ rate: 1, typo: 1 } as never)).toThrow('rateLimit.typo');
  });

  it('rejects an aborted call at once and lets a sync-throwing fn fail only its own call', async () => {
    const clock = new VirtualClock();
    const limiter = rateLimit({ rate: 1, per: 10, wait: 100, clock });
    await expect(
      limiter.execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    const held = outcome(
      limiter.execute(() => {
        throw new Error('later');
      }),
    );
    await clock.advance(10);
    expect(await held).toEqual({ error: new Error('later') });
    const deadline = limiter.execute(() => 'x', { budget: 5 });
    await expect(deadline).rejects.toBeInstanceOf(RateLimitError);
    expect(unhandled()).toEqual([]);
  });

  it('ends a held call at its deadline from an enclosing budget without starting it', async () => {
    const clock = new VirtualClock();
    const limiter = rateLimit({ rate: 1, per: 100, wait: 1000, clock });
    await limiter.execute(() => 0);
    let started = false;
    const held = outcome(
      limiter.execute(
        () => {
          started = true;
        },
        { budget: 101 },
      ),
    );
    await clock.advance(100);
    expect(await held).toEqual({ value: undefined });
    expect(started).toBe(true);
    const late = outcome(limiter.execute(() => 'x', { deadline: clock.now() + 150 }));
    await clock.advance(200);
    const r = (await late) as { value?: unknown; error?: unknown };
    expect(r.value ?? r.error).not.toBeInstanceOf(TimeoutError);
  });

  describe('pause and 429s', () => {
    const tooMany = (retryAfterMs: number) =>
      Object.assign(new Error('HTTP 429'), { status: 429, retryAfterMs });

    it('pause(ms) holds new calls past the pause, or refuses them until it ends', async () => {
      const clock = new VirtualClock();
      const limiter = rateLimit({ rate: 100, wait: 500, clock });
      limiter.pause(300);
      const held = limiter.execute(() => clock.now());
      await expect(limiter.execute(() => 'x', { budget: 200 })).rejects.toMatchObject({
        code: 'ERR_RATE_LIMITED',
        retryAfterMs: 310,
      });
      await clock.advance(300);
      expect(await held).toBe(300);
    });

    it('keeps the slots of calls already held, and refuses newcomers until the pause ends', async () => {
      const clock = new VirtualClock();
      const limiter = rateLimit({ rate: 10, wait: '1s', clock });
      await limiter.execute(() => 0);
      const starts: number[] = [];
      const held = [1, 2].map(() => limiter.execute(() => starts.push(clock.now())));
      limiter.pause(500);
      await expect(limiter.execute(() => 'x')).rejects.toMatchObject({ retryAfterMs: 500 });
      await clock.advance(500);
      await Promise.all(held);
      expect(starts).toEqual([100, 200]);
      expect(await limiter.execute(() => clock.now())).toBe(500);
    });

    it('with pauseOn429, a 429 with Retry-After from the dependency pauses the limit', async () => {
      const clock = new VirtualClock();
      const follows = rateLimit({ rate: 100, pauseOn429: true, clock });
      const ignores = rateLimit({ rate: 100, clock });
      for (const limiter of [follows, ignores]) {
        await expect(
          limiter.execute(() => {
            throw tooMany(2000);
          }),
        ).rejects.toThrow('HTTP 429');
        await clock.advance(10);
      }
      await expect(follows.execute(() => 'x')).rejects.toMatchObject({ retryAfterMs: 1980 });
      expect(await ignores.execute(() => 'y')).toBe('y');
      // A 503, or a 429 without a delay, changes nothing.
      await clock.advance(2000);
      await expect(
        follows.execute(() => {
          throw Object.assign(new Error('HTTP 429'), { status: 429 });
        }),
      ).rejects.toThrow();
      await clock.advance(10);
      expect(await follows.execute(() => 'z')).toBe('z');
    });
  });
});
