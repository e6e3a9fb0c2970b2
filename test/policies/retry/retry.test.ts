import { describe, expect, it } from 'vitest';
import {
  BulkheadRejectedError,
  CircuitOpenError,
  ConfigError,
  LoadShedError,
  pipeline,
  retry,
  retryBudget,
  timeout,
  TimeoutError,
  isRetryableError,
  isRetryableResult,
} from '../../../src/index.js';
import { VirtualClock } from '../../../src/testing/index.js';

const httpError = (status: number, extra: object = {}) =>
  Object.assign(new Error(`HTTP ${status}`), { status, ...extra });
const netError = (code: string) => Object.assign(new Error(code), { code });

/** Runs `fn` through `policy`, letting the virtual clock run until the call settles. */
async function settle<T>(
  clock: VirtualClock,
  call: Promise<T>,
): Promise<{ value?: T; error?: unknown }> {
  const outcome = call.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  await clock.runAll();
  return outcome;
}

describe('retry', () => {
  it('retries a retryable failure and returns the first success', async () => {
    const clock = new VirtualClock();
    let calls = 0;
    const r = retry({ clock, backoff: 10 });
    const out = await settle(
      clock,
      r.execute((ctx) => {
        calls++;
        if (ctx.attempt < 3) throw httpError(503);
        return `ok on ${ctx.attempt}`;
      }),
    );
    expect(out.value).toBe('ok on 3');
    expect(calls).toBe(3);
  });

  it('counts maxAttempts including the first attempt, and rethrows the last error unchanged', async () => {
    const clock = new VirtualClock();
    const errors = [httpError(503), httpError(502), httpError(500)];
    let i = 0;
    const out = await settle(
      clock,
      retry({ clock, maxAttempts: 3, backoff: 1 }).execute(() => {
        throw errors[i++];
      }),
    );
    expect(i).toBe(3);
    expect(out.error).toBe(errors[2]);
  });

  it.each([
    ['ECONNRESET', netError('ECONNRESET')],
    ['ECONNREFUSED', netError('ECONNREFUSED')],
    ['ETIMEDOUT', netError('ETIMEDOUT')],
    ['EPIPE', netError('EPIPE')],
    ['EAI_AGAIN', netError('EAI_AGAIN')],
    [
      'undici socket error',
      Object.assign(new TypeError('fetch failed'), { cause: netError('UND_ERR_SOCKET') }),
    ],
    ['408', httpError(408)],
    ['425', httpError(425)],
    ['429', httpError(429)],
    ['500', httpError(500)],
    ['502', httpError(502)],
    ['503', httpError(503)],
    ['504', httpError(504)],
    ['statusCode 503', Object.assign(new Error('x'), { statusCode: 503 })],
    ['response.status 502', Object.assign(new Error('x'), { response: { status: 502 } })],
    ['attempt timeout', new TimeoutError('attempt', 100)],
  ])('retries %s by default', (_name, error) => {
    expect(isRetryableError(error)).toBe(true);
  });

  it.each([
    ['400', httpError(400)],
    ['401', httpError(401)],
    ['403', httpError(403)],
    ['404', httpError(404)],
    ['422', httpError(422)],
    ['a plain Error', new Error('bug')],
    ['a budget timeout', new TimeoutError('budget', 100)],
    ['CircuitOpenError', new CircuitOpenError('open', 100)],
    ['BulkheadRejectedError', new BulkheadRejectedError('full', 'full')],
    ['LoadShedError', new LoadShedError('capacity', 'shed')],
    ['an AbortError', new DOMException('aborted', 'AbortError')],
    ['a string', 'ECONNRESET'],
  ])('does not retry %s by default', (_name, error) => {
    expect(isRetryableError(error)).toBe(false);
  });

  it('retries an error that flags itself retryable, whatever its status', () => {
    expect(
      isRetryableError(Object.assign(new Error('409'), { status: 409, retryable: true })),
    ).toBe(true);
    expect(isRetryableError(Object.assign(new Error('409'), { status: 409 }))).toBe(false);
  });

  it('isRetryableResult accepts an HTTP response with a retryable status, never plain results', () => {
    const response = (status: number) => ({ status, headers: { get: () => null } });
    expect(isRetryableResult(response(503))).toBe(true);
    expect(isRetryableResult(response(200))).toBe(false);
    expect(isRetryableResult({ status: 503 })).toBe(false);
    expect(isRetryableResult(503)).toBe(false);
  });

  it('returns the last retryable result when attempts run out (results are retried only through retryOn)', async () => {
    const clock = new VirtualClock();
    const res = { status: 503, headers: { get: () => null } };
    let calls = 0;
    const out = await settle(
      clock,
      retry({
        clock,
        maxAttempts: 2,
        backoff: 1,
        retryOn: (o, _ctx, kind) => (kind === 'error' ? isRetryableError(o) : isRetryableResult(o)),
      }).execute(() => {
        calls++;
        return res;
      }),
    );
    expect(out.value).toBe(res);
    expect(calls).toBe(2);
  });

  it('does not retry what retryOn refuses, and passes it the context and the kind', async () => {
    const seen: Array<[unknown, number, string]> = [];
    const e = new Error('validation');
    await expect(
      retry({
        retryOn: (o, ctx, kind) => {
          seen.push([o, ctx.attempt, kind]);
          return false;
        },
      }).execute(() => {
        throw e;
      }),
    ).rejects.toBe(e);
    expect(seen).toEqual([[e, 1, 'error']]);
  });

  it('sleeps the backoff between attempts, on the clock', async () => {
    const clock = new VirtualClock();
    const times: number[] = [];
    const call = retry({
      clock,
      maxAttempts: 4,
      backoff: { initial: 100, multiplier: 2, jitter: 'none' },
    }).execute(() => {
      times.push(clock.now());
      throw httpError(503);
    });
    await settle(clock, call);
    expect(times).toEqual([0, 100, 300, 700]);
  });

  it('uses a server-requested retryAfterMs instead of the backoff', async () => {
    const clock = new VirtualClock();
    const times: number[] = [];
    const call = retry({ clock, maxAttempts: 2, backoff: 10 }).execute(() => {
      times.push(clock.now());
      if (times.length === 1) throw httpError(429, { retryAfterMs: 1500 });
      return 'ok';
    });
    expect((await settle(clock, call)).value).toBe('ok');
    expect(times).toEqual([0, 1500]);
  });

  it('gives up at once when Retry-After lies beyond the budget', async () => {
    const clock = new VirtualClock();
    const e = httpError(503, { retryAfterMs: 5000 });
    let calls = 0;
    let settledAt = -1;
    const call = retry({ clock, backoff: 10 })
      .execute(
        () => {
          calls++;
          throw e;
        },
        { budget: 1000 },
      )
      .finally(() => (settledAt = clock.now()));
    const out = await settle(clock, call);
    expect(out.error).toBe(e);
    expect(calls).toBe(1);
    expect(settledAt).toBe(0);
  });

  it('never starts an attempt with less than minAttemptTime left', async () => {
    const clock = new VirtualClock();
    const times: number[] = [];
    const call = retry({ clock, maxAttempts: 10, backoff: 300, minAttemptTime: 150 }).execute(
      () => {
        times.push(clock.now());
        throw httpError(503);
      },
      { budget: 1000 },
    );
    await settle(clock, call);
    // 0, 300, 600; a retry at 900 would have only 100 ms left.
    expect(times).toEqual([0, 300, 600]);
  });

  it('does not retry after the caller aborts, and an abort during a backoff sleep ends the call at once', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    let calls = 0;
    const call = retry({ clock, backoff: 10_000 })
      .execute(
        () => {
          calls++;
          throw httpError(503);
        },
        { signal: controller.signal },
      )
      .catch((e: unknown) => e);
    await clock.advance(100);
    const reason = new Error('user navigated away');
    controller.abort(reason);
    expect(await call).toBe(reason);
    expect(calls).toBe(1);
    await clock.runAll();
    expect(calls).toBe(1);
    expect(clock.now()).toBeLessThan(10_000);
  });

  it('retries an attempt that timed out', async () => {
    const clock = new VirtualClock();
    let calls = 0;
    const p = pipeline(retry({ clock, backoff: 0 }), timeout(100));
    const call = p.execute(async () => {
      calls++;
      if (calls === 1) await new Promise(() => {});
      return 'second';
    });
    expect((await settle(clock, call)).value).toBe('second');
  });

  it('emits retry and giveUp events', async () => {
    const clock = new VirtualClock();
    const r = retry({ clock, maxAttempts: 2, backoff: 5 });
    const events: string[] = [];
    r.on('retry', (e) => events.push(`retry ${e.attempt} after ${e.delay} (${e.reason})`));
    r.on('giveUp', (e) => events.push(`giveUp ${e.reason}`));
    await settle(
      clock,
      r.execute(() => {
        throw httpError(503);
      }),
    );
    expect(events).toEqual(['retry 2 after 5 (status)', 'giveUp attempts']);
  });

  it('returns failures without retrying once the retry budget is empty', async () => {
    const clock = new VirtualClock();
    const shared = retryBudget({ ratio: 0, minPerSecond: 0.2, window: 10_000 }); // 2 retries per window
    const r = retry({ clock, maxAttempts: 5, backoff: 0, retryBudget: shared });
    const exhausted: number[] = [];
    r.on('retryBudgetExhausted', (e) => exhausted.push(e.attempt));
    let calls = 0;
    const fail = () => {
      calls++;
      throw httpError(503);
    };
    await settle(clock, r.execute(fail));
    expect(calls).toBe(3); // first + the 2 retries the budget allows
    await settle(clock, r.execute(fail));
    expect(calls).toBe(4); // no retry left
    expect(exhausted).toEqual([3, 1]);
    expect(shared.exhausted).toBe(2);
  });

  it('names the retry allowance retryBudget; the old names still work, deprecated', async () => {
    const clock = new VirtualClock();
    const shared = retryBudget({ ratio: 0, minPerSecond: 0, window: 10_000 });
    const r = retry({ clock, maxAttempts: 2, backoff: 0, retryBudget: shared });
    expect(r.retryBudget).toBe(shared);
    expect(r.budget).toBe(shared);
    expect(retry().retryBudget).toBeUndefined();
    const heard: string[] = [];
    r.on('retryBudgetExhausted', () => heard.push('retryBudgetExhausted'));
    r.on('budgetExhausted', () => heard.push('budgetExhausted'));
    await settle(
      clock,
      r.execute(() => {
        throw httpError(503);
      }),
    );
    expect(heard).toEqual(['retryBudgetExhausted', 'budgetExhausted']);
  });

  it('refills the retry budget as the window slides', async () => {
    const clock = new VirtualClock();
    const shared = retryBudget({ ratio: 0, minPerSecond: 0.1, window: 10_000 }); // 1 retry per window
    const r = retry({ clock, maxAttempts: 2, backoff: 0, retryBudget: shared });
    let calls = 0;
    const fail = () => {
      calls++;
      throw httpError(503);
    };
    await settle(clock, r.execute(fail));
    await settle(clock, r.execute(fail));
    expect(calls).toBe(3);
    await clock.advance(10_000);
    await settle(clock, r.execute(fail));
    expect(calls).toBe(5);
  });

  it.each([
    [{ maxAttempts: 0 }, /retry\.maxAttempts: expected integer ≥ 1, got 0/],
    [{ maxAttempts: 2.5 }, /retry\.maxAttempts: expected integer ≥ 1, got 2\.5/],
    [{ minAttemptTime: -1 }, /retry\.minAttemptTime: expected a duration/],
    [{ retryOn: 'yes' }, /retry\.retryOn: expected a function, got "yes"/],
    [{ random: 4 }, /retry\.random: expected a function, got 4/],
    [
      { retryBudget: { ratio: 2 } },
      /retry\.retryBudget\.ratio: expected number in \[0, 1\], got 2/,
    ],
    [{ retryBudget: { window: 0 } }, /retry\.retryBudget\.window: expected a duration ≥ 1 ms/],
    [{ attempts: 3 }, /retry\.attempts: unknown option/],
  ])('rejects bad options %j with a ConfigError naming the option', (options, message) => {
    expect(() => retry(options as never)).toThrow(ConfigError);
    expect(() => retry(options as never)).toThrow(message);
  });

  it('reports every problem at once', () => {
    try {
      retry({ maxAttempts: 0, backoff: { jitter: 'wild' as never } });
      expect.unreachable();
    } catch (e) {
      expect((e as ConfigError).problems.map((p) => p.path)).toEqual([
        'retry.maxAttempts',
        'retry.backoff.jitter',
      ]);
    }
  });
});
