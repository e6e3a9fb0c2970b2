import { describe, expect, it } from 'vitest';
import {
  budget,
  BulkheadRejectedError,
  ConfigError,
  pipeline,
  TimeoutError,
  type Context,
} from '../../src/index.js';
import { bulkhead } from '../../src/policies/bulkhead.js';
import { CallContext } from '../../src/core/context.js';
import { terminalStep } from '../../src/core/pipeline.js';
import { FELL_BACK, fallback, FallbackPolicy } from '../../src/policies/fallback.js';
import { VirtualClock } from '../../src/testing/index.js';

const never = () => new Promise<never>(() => {});

describe('fallback', () => {
  it('returns a fallback value as is when fn throws', async () => {
    const cached = { items: [] as string[] };
    const value = await fallback(cached).execute(() => {
      throw new Error('down');
    });
    expect(value).toBe(cached);
  });

  it('calls a fallback function with the error and the call context', async () => {
    const boom = new Error('boom');
    let seen: { error: unknown; ctx: Context } | undefined;
    const value = await fallback((error: unknown, ctx: Context) => {
      seen = { error, ctx };
      return `fallback for ${(error as Error).message}`;
    }).execute(() => Promise.reject(boom), { idempotencyKey: 'k-1' });
    expect(value).toBe('fallback for boom');
    expect(seen!.error).toBe(boom);
    expect(seen!.ctx.idempotencyKey).toBe('k-1');
  });

  it('waits for an async fallback function', async () => {
    const value = await fallback(async () => 'later').execute(() => Promise.reject(new Error('x')));
    expect(value).toBe('later');
  });

  it('lets a success through without calling the fallback', async () => {
    let called = false;
    const value = await fallback(() => {
      called = true;
      return 0;
    }).execute(() => 42);
    expect(value).toBe(42);
    expect(called).toBe(false);
  });

  it('rejects with the fallback function own error when it throws', async () => {
    const second = new Error('fallback failed too');
    await expect(
      fallback(() => {
        throw second;
      }).execute(() => Promise.reject(new Error('first'))),
    ).rejects.toBe(second);
  });

  it('replaces only the outcomes its on predicate accepts', async () => {
    const p = fallback('cached', { on: (e) => e instanceof BulkheadRejectedError });
    const other = new Error('not for me');
    await expect(p.execute(() => Promise.reject(other))).rejects.toBe(other);
    const b = bulkhead({ maxConcurrent: 1 });
    void b.execute(never);
    expect(await pipeline(p, b).execute(() => 'fresh')).toBe('cached');
  });

  it('with on, can replace an unwanted result, passing it to the fallback function', async () => {
    const kinds: string[] = [];
    const p = fallback(
      (outcome: unknown) => `fallback after ${(outcome as { status: number }).status}`,
      {
        on: (outcome, _ctx, kind) => {
          kinds.push(kind);
          return kind === 'result' && (outcome as { status: number }).status >= 500;
        },
      },
    );
    expect(await p.execute(() => ({ status: 503 }))).toBe('fallback after 503');
    expect(await p.execute(() => ({ status: 200 }))).toEqual({ status: 200 });
    expect(kinds).toEqual(['result', 'result']);
  });

  it('covers a budget timeout when it sits outside the budget', async () => {
    const clock = new VirtualClock();
    const p = pipeline(fallback('stale', { clock }), budget(100));
    const call = p.execute(never);
    await clock.advance(100);
    expect(await call).toBe('stale');
  });

  it('rethrows the caller own abort instead of falling back', async () => {
    let called = false;
    const controller = new AbortController();
    const reason = new Error('caller left');
    const p = fallback(() => {
      called = true;
      return 'fallback';
    });
    let observed: unknown;
    const call = p.execute(
      (ctx) =>
        new Promise((_, reject) => {
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
        }),
      { signal: controller.signal },
    );
    controller.abort(reason);
    await call.catch((e: unknown) => (observed = e));
    await new Promise((r) => setImmediate(r));
    expect(observed).toBe(reason);
    expect(called).toBe(false);
  });

  it('does not fall back on an AbortError by default, but an explicit on decides for itself', async () => {
    const abortError = new DOMException('aborted', 'AbortError');
    await expect(fallback('x').execute(() => Promise.reject(abortError))).rejects.toBe(abortError);
    expect(await fallback('x', { on: () => true }).execute(() => Promise.reject(abortError))).toBe(
      'x',
    );
  });

  it('emits a fallback event with the kind and the outcome', async () => {
    const p = fallback(1);
    const events: unknown[] = [];
    const sub = p.on('fallback', (e) => events.push(e));
    const boom = new Error('boom');
    await p.execute(() => Promise.reject(boom));
    sub.dispose();
    await p.execute(() => Promise.reject(boom));
    expect(events).toEqual([{ kind: 'error', outcome: boom }]);
  });

  it('does not run the fallback when its own call already timed out', async () => {
    // The caller already has the TimeoutError; a substitute nobody receives must not run.
    const clock = new VirtualClock();
    let called = false;
    const p = fallback(
      () => {
        called = true;
        return 'late';
      },
      { clock },
    );
    let reject!: (e: unknown) => void;
    const call = p.execute(() => new Promise((_, r) => (reject = r)), { budget: 50 });
    const outcome = call.catch((e: unknown) => e);
    await clock.advance(50);
    expect(await outcome).toBeInstanceOf(TimeoutError);
    reject(new Error('late failure'));
    await new Promise((r) => setImmediate(r));
    expect(called).toBe(false);
  });

  it('marks the call context as fallen back, for the metrics outcome', async () => {
    const p = fallback('x');
    const ok = CallContext.root(new VirtualClock(), Infinity);
    await p.run(ok, () => 'fine', terminalStep);
    expect(ok.get(FELL_BACK)).toBeUndefined();
    const failed = CallContext.root(new VirtualClock(), Infinity);
    expect(await p.run(failed, () => Promise.reject(new Error('down')), terminalStep)).toBe('x');
    expect(failed.get(FELL_BACK)).toBe(true);
  });

  it('rejects bad options with a ConfigError naming the path', () => {
    expect(() => fallback(1, { on: 'yes' as never })).toThrow(ConfigError);
    expect(() => fallback(1, { on: 'yes' as never })).toThrow(
      'fallback.on: expected a function, got "yes"',
    );
    expect(() => new FallbackPolicy(1, { when: 1 } as never, 'payments.fallback')).toThrow(
      /payments\.fallback\.when/,
    );
  });
});
