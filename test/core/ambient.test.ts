import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ambientSlot, setAmbientContextProvider } from '../../src/core/ambient.js';
import type { CallContext, Context, Operation, Step } from '../../src/core/context.js';
import { BasePolicy } from '../../src/core/pipeline.js';
import { VirtualClock } from '../../src/testing/virtual-clock.js';

/** The smallest policy there is: it only carries a clock, so calls run on VirtualClock. */
class PassThrough extends BasePolicy {
  readonly kind = 'pass';
  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    return next.invoke(ctx, fn);
  }
}

/** Runs `inner` while `outer`'s context is the ambient one, as a request handler would. */
function within<T>(outer: Context, inner: () => T): T {
  const previous = setAmbientContextProvider(() => outer);
  try {
    return inner();
  } finally {
    setAmbientContextProvider(previous);
  }
}

const never = (): Promise<never> => new Promise(() => {});

afterEach(() => {
  setAmbientContextProvider(undefined);
});

describe('setAmbientContextProvider', () => {
  it('returns the provider it replaced, and undefined removes it', () => {
    const first = () => undefined;
    const second = () => undefined;
    expect(setAmbientContextProvider(first)).toBeUndefined();
    expect(setAmbientContextProvider(second)).toBe(first);
    expect(setAmbientContextProvider(undefined)).toBe(second);
    expect(ambientSlot.provider).toBeUndefined();
  });

  it('keeps its slot on globalThis under a registry symbol, so every copy of bulwark shares it', () => {
    const holder = globalThis as unknown as Record<symbol, unknown>;
    expect(holder[Symbol.for('bulwark.ambientContext')]).toBe(ambientSlot);
    const provider = () => undefined;
    setAmbientContextProvider(provider);
    expect((holder[Symbol.for('bulwark.ambientContext')] as typeof ambientSlot).provider).toBe(
      provider,
    );
  });
});

describe('a call with no parent while an ambient context is current', () => {
  it('inherits the ambient deadline and priority, but not its idempotency key', async () => {
    const clock = new VirtualClock();
    const policy = new PassThrough(clock);
    let inner: Context | undefined;
    const outer = policy.execute(
      (ctx) =>
        within(ctx, () =>
          policy.execute((c) => {
            inner = c;
            return ctx;
          }),
        ),
      { budget: 500, priority: 'high', idempotencyKey: 'outer-key' },
    );
    const outerCtx = await outer;
    expect(inner!.deadline).toBe(500);
    expect(inner!.deadline).toBe(outerCtx.deadline);
    expect(inner!.priority).toBe('high');
    expect(inner!.idempotencyKey).not.toBe('outer-key');
  });

  it('is consulted even when execute is given no options at all', async () => {
    const clock = new VirtualClock();
    const policy = new PassThrough(clock);
    let calls = 0;
    let deadline = NaN;
    await policy.execute(
      (ctx) => {
        setAmbientContextProvider(() => {
          calls++;
          return ctx;
        });
        return policy.execute((c) => {
          deadline = c.deadline;
        });
      },
      { budget: 300 },
    );
    expect(calls).toBe(1);
    expect(deadline).toBe(300);
  });

  it('ends when the ambient call’s deadline passes', async () => {
    const clock = new VirtualClock();
    const policy = new PassThrough(clock);
    let inner: Promise<unknown> | undefined;
    const outer = policy.execute(
      (ctx) => {
        inner = within(ctx, () => policy.execute(never));
        return never();
      },
      { budget: 200 },
    );
    const innerOutcome = inner!.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    const outerOutcome = outer.catch((error: unknown) => error);
    await clock.advance(199);
    let settled = false;
    void innerOutcome.then(() => (settled = true));
    await clock.advance(0);
    expect(settled).toBe(false);
    await clock.advance(1);
    expect(await innerOutcome).toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(await outerOutcome).toMatchObject({ code: 'ERR_TIMEOUT' });
  });

  it('keeps its own deadline when that is tighter than the ambient one', async () => {
    const clock = new VirtualClock();
    const policy = new PassThrough(clock);
    const deadlines = await policy.execute(
      (ctx) =>
        within(ctx, () =>
          Promise.all([
            policy.execute((c) => c.deadline, { budget: 100 }),
            policy.execute((c) => c.deadline, { budget: 5_000 }),
          ]),
        ),
      { budget: 1_000 },
    );
    expect(deadlines).toEqual([100, 1_000]);
  });

  it('ignores the ambient context when an explicit parent is given', async () => {
    const clock = new VirtualClock();
    const policy = new PassThrough(clock);
    let consulted = 0;
    const deadline = await policy.execute(
      (parent) => {
        setAmbientContextProvider(() => {
          consulted++;
          return undefined;
        });
        return policy.execute((c) => c.deadline, { parent });
      },
      { budget: 700 },
    );
    expect(deadline).toBe(700);
    expect(consulted).toBe(0);
  });

  it('is a plain root call when the provider has no context to give', async () => {
    const clock = new VirtualClock();
    const policy = new PassThrough(clock);
    setAmbientContextProvider(() => undefined);
    const [deadline, priority] = await policy.execute((c) => [c.deadline, c.priority] as const);
    expect(deadline).toBe(Infinity);
    expect(priority).toBe('normal');
  });

  it('takes what is left of a foreign context (another clock or copy) and follows its signal', async () => {
    const clock = new VirtualClock({ start: 10_000 });
    const policy = new PassThrough(clock);
    const controller = new AbortController();
    const foreign: Context = {
      signal: controller.signal,
      deadline: 42, // on some other clock: meaningless here, so not used
      remaining: () => 250,
      attempt: 1,
      priority: 'low',
      idempotencyKey: 'foreign',
      fingerprint: undefined,
    };
    let inner: Context | undefined;
    const call = within(foreign, () =>
      policy.execute((c) => {
        inner = c;
        return never();
      }),
    );
    expect(inner!.deadline).toBe(10_250);
    expect(inner!.priority).toBe('low');
    controller.abort(new Error('request gone'));
    await expect(call).rejects.toThrow('request gone');
  });
});

describe('ambient context properties', () => {
  it('an inner call’s deadline is the tighter of its own budget and the ambient deadline', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10_000 }),
        fc.option(fc.integer({ min: 1, max: 10_000 }), { nil: undefined }),
        fc.integer({ min: 0, max: 1_000_000 }),
        async (outerBudget, innerBudget, start) => {
          const clock = new VirtualClock({ start });
          const policy = new PassThrough(clock);
          const inner = await policy.execute(
            (ctx) =>
              within(ctx, () =>
                policy.execute(
                  (c) => c.deadline,
                  innerBudget === undefined ? undefined : { budget: innerBudget },
                ),
              ),
            { budget: outerBudget },
          );
          expect(inner).toBe(start + Math.min(outerBudget, innerBudget ?? Infinity));
        },
      ),
    );
  });
});
