import { describe, expect, it } from 'vitest';
import { budget, ConfigError, pipeline, retry, timeout, TimeoutError } from '../../src/index.js';
import { VirtualClock } from '../../src/testing/index.js';

const never = () => new Promise<never>(() => {});

describe('timeout (per attempt)', () => {
  it('rejects with an attempt TimeoutError at the deadline even when fn ignores the signal', async () => {
    const clock = new VirtualClock();
    let signal: AbortSignal | undefined;
    const call = timeout(100, { clock })
      .execute((ctx) => {
        signal = ctx.signal;
        return never();
      })
      .catch((e: unknown) => e);
    await clock.advance(99);
    expect(signal!.aborted).toBe(false);
    await clock.advance(1);
    const error = (await call) as TimeoutError;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.scope).toBe('attempt');
    expect(error.timeoutMs).toBe(100);
    expect(signal!.reason).toBe(error);
  });

  it('lets a call that finishes in time through untouched', async () => {
    const clock = new VirtualClock();
    const call = timeout('100ms', { clock }).execute(() => clock.sleep(60).then(() => 'done'));
    await clock.advance(60);
    expect(await call).toBe('done');
  });

  it('gives each attempt its own signal and deadline', async () => {
    const clock = new VirtualClock();
    const signals: AbortSignal[] = [];
    const deadlines: number[] = [];
    const p = pipeline(retry({ maxAttempts: 2, backoff: 0 }), timeout(100, { clock }));
    const call = p
      .execute((ctx) => {
        signals.push(ctx.signal);
        deadlines.push(ctx.deadline);
        return never();
      })
      .catch((e: unknown) => e);
    await clock.advance(100);
    await clock.advance(100);
    expect(await call).toBeInstanceOf(TimeoutError);
    expect(deadlines).toEqual([100, 200]);
    expect(signals[0]).not.toBe(signals[1]);
    expect(signals.every((s) => s.aborted)).toBe(true);
  });

  it('defers to a tighter budget, which then reports scope budget', async () => {
    const clock = new VirtualClock();
    const call = pipeline(budget(50, { clock }), timeout(100))
      .execute(never)
      .catch((e: unknown) => e);
    await clock.advance(50);
    expect(((await call) as TimeoutError).scope).toBe('budget');
  });

  it('Infinity means no timeout, written out explicitly', async () => {
    const clock = new VirtualClock();
    expect(await timeout(Infinity, { clock }).execute(() => 5)).toBe(5);
    expect(clock.pending).toBe(0);
  });

  it.each([[-1], ['soon'], [NaN], [null]])(
    'rejects a bad duration %j with a ConfigError naming it',
    (ms) => {
      expect(() => timeout(ms as number)).toThrow(ConfigError);
      expect(() => timeout(ms as number)).toThrow(/^timeout\.ms: expected a duration/);
      expect(() => budget(ms as number)).toThrow(/^budget\.ms: expected a duration/);
    },
  );

  it.each([
    ['timeout', timeout],
    ['budget', budget],
  ] as const)('%s() requires a limit of at least 1 ms, as dependency() does', (name, make) => {
    expect(() => make(undefined as unknown as number)).toThrow(ConfigError);
    expect(() => make(undefined as unknown as number)).toThrow(
      new RegExp(`^${name}\\.ms: expected a duration ≥ 1 ms`, 'm'),
    );
    expect(() => make(0)).toThrow(new RegExp(`^${name}\\.ms: expected a duration ≥ 1 ms`, 'm'));
    expect(() => make('0ms')).toThrow(ConfigError);
    expect(make(1).ms).toBe(1);
    expect(make('Infinity').ms).toBe(Infinity);
  });

  it('rejects unknown options', () => {
    expect(() => timeout(10, { clok: 1 } as never)).toThrow(
      /timeout\.clok: unknown option \(known: clock\)/,
    );
  });
});

describe('budget (whole call)', () => {
  it('bounds every attempt and every backoff sleep together', async () => {
    const clock = new VirtualClock();
    let attempts = 0;
    const p = pipeline(
      budget(1000, { clock }),
      retry({ maxAttempts: 10, backoff: 200 }),
      timeout(300),
    );
    const started = clock.now();
    const call = p
      .execute(() => {
        attempts++;
        return never();
      })
      .catch((e: unknown) => e);
    await clock.runAll();
    const error = (await call) as TimeoutError;
    expect(error).toBeInstanceOf(TimeoutError);
    // 300 + 200 + 300 = 800; a further 200 ms sleep would leave no time for an attempt.
    expect(attempts).toBe(2);
    expect(clock.now() - started).toBeLessThanOrEqual(1000);
  });

  it('aborts the signal with the budget error at the deadline', async () => {
    const clock = new VirtualClock();
    let signal: AbortSignal | undefined;
    const call = budget(20, { clock })
      .execute((ctx) => {
        signal = ctx.signal;
        return never();
      })
      .catch((e: unknown) => e);
    await clock.advance(20);
    const error = await call;
    expect(signal!.reason).toBe(error);
    expect((error as TimeoutError).scope).toBe('budget');
  });
});
