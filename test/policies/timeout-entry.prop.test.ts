import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  budget,
  pipeline,
  retry,
  timeout,
  TimeoutError,
  type Context,
  type ExecuteOptions,
} from '../../src/index.js';
import { deadlineTimersOf } from '../../src/core/deadline-timers.js';
import type { CallContext } from '../../src/core/context.js';
import { VirtualClock } from '../../src/testing/index.js';
import { collectUnhandledRejections, endingOf } from '../support/async.js';
import { setAmbientContextProvider } from '../../src/core/ambient.js';

const unhandled = collectUnhandledRejections();
const never = () => new Promise<never>(() => {});

/** What a call ended with, and when, in a form two runs can be compared by. */
interface Ending {
  at: number;
  value?: unknown;
  error?: { type: string; scope?: string; timeoutMs?: number; message: string };
  signalAborted: boolean;
}

describe('a timeout or budget as the first step of a call (it guards the call context itself)', () => {
  it('runs fn in the call context itself: under a parent, fn sees a direct child of it', async () => {
    const clock = new VirtualClock();
    const t = timeout(100, { clock });
    let inner: CallContext | undefined;
    let outer: Context | undefined;
    await budget(1000, { clock }).execute((ctx) => {
      outer = ctx;
      return t.execute(
        (c) => {
          inner = c as CallContext;
        },
        { parent: ctx },
      );
    });
    expect(inner!.parent).toBe(outer);
    expect(inner!.deadline).toBe(100);
  });

  it('a second timeout on a call under a parent leaves the parent nothing subscribed once settled', async () => {
    const clock = new VirtualClock();
    const t = timeout(100, { clock });
    await budget(1000, { clock }).execute(async (ctx) => {
      await Promise.all(Array.from({ length: 5 }, () => t.execute(() => 1, { parent: ctx })));
      expect((ctx as CallContext).subscriberCount).toBe(0);
    });
    expect(deadlineTimersOf(clock).size).toBe(0);
  });

  it('property: settles exactly as the same limit behind a plain step does (value, error, time, signal)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('timeout', 'budget'),
        fc.integer({ min: 1, max: 500 }), // the policy's limit
        fc.option(fc.integer({ min: 0, max: 600 }), { nil: undefined }), // budget option
        fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }), // parent budget
        fc.option(fc.integer({ min: 0, max: 600 }), { nil: undefined }), // caller aborts at
        fc.boolean(), // caller signal already aborted
        fc.option(fc.integer({ min: 0, max: 600 }), { nil: undefined }), // fn latency; none: hangs
        fc.boolean(), // fn fails rather than succeeds
        async (kind, ms, budgetOpt, parentBudget, abortAt, preAborted, latency, fails) => {
          const run = async (asEntry: boolean): Promise<Ending> => {
            const clock = new VirtualClock({ start: 1000 });
            const limit = kind === 'timeout' ? timeout(ms, { clock }) : budget(ms, { clock });
            // retry({ maxAttempts: 1 }) passes outcomes through unchanged but is a plain
            // step, so the limit behind it guards a child context: the reference.
            const policy = asEntry ? limit : pipeline(retry({ maxAttempts: 1 }), limit);
            const caller = new AbortController();
            if (preAborted) caller.abort(new Error('gone early'));
            else if (abortAt !== undefined)
              clock.setTimeout(() => caller.abort(new Error('gone')), abortAt);
            let signal: AbortSignal | undefined;
            const work = (ctx: Context) => {
              signal = ctx.signal;
              if (latency === undefined) return never();
              return clock.sleep(latency).then(() => {
                if (fails) throw new Error('failed');
                return 'ok';
              });
            };
            const options: ExecuteOptions = { signal: caller.signal };
            if (budgetOpt !== undefined) options.budget = budgetOpt;
            let ending: Ending | undefined;
            const record = (value: unknown, error: unknown) => {
              const e = error as TimeoutError | undefined;
              ending = {
                at: clock.now(),
                signalAborted: signal?.aborted ?? false,
                ...(e === undefined
                  ? { value }
                  : {
                      error: {
                        type: e.constructor.name,
                        scope: e.scope,
                        timeoutMs: e.timeoutMs,
                        message: e.message,
                      },
                    }),
              };
            };
            const start = (ctx?: Context) =>
              policy.execute(work, ctx === undefined ? options : { ...options, parent: ctx }).then(
                (v) => record(v, undefined),
                (e: unknown) => record(undefined, e),
              );
            const outer =
              parentBudget === undefined
                ? start()
                : budget(parentBudget, { clock })
                    .execute((ctx) => start(ctx))
                    .catch(() => {});
            await clock.runAll();
            await outer;
            expect(deadlineTimersOf(clock).size).toBe(0);
            return ending!;
          };
          expect(await run(true)).toEqual(await run(false));
        },
      ),
      { numRuns: 300 },
    );
    await new Promise((r) => setImmediate(r));
    expect(unhandled()).toEqual([]);
  });

  it('property: called with no options at all (its shortcut past startCall), it settles as the same limit behind a plain step does', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('timeout', 'budget'),
        fc.integer({ min: 1, max: 500 }), // the policy's limit
        fc.option(fc.integer({ min: 0, max: 600 }), { nil: undefined }), // latency; none: hangs
        fc.constantFrom('resolves', 'rejects', 'throws', 'returns'), // how fn ends
        fc.boolean(), // fn reads its signal
        async (kind, ms, latency, how, readsSignal) => {
          const run = async (shortcut: boolean) => {
            const clock = new VirtualClock({ start: 1000 });
            const limit = kind === 'timeout' ? timeout(ms, { clock }) : budget(ms, { clock });
            const policy = shortcut ? limit : pipeline(retry({ maxAttempts: 1 }), limit);
            let seen: { deadline: number; attempt: number } | undefined;
            let signal: AbortSignal | undefined;
            const work = (ctx: Context) => {
              seen = { deadline: ctx.deadline, attempt: ctx.attempt };
              if (readsSignal) signal = ctx.signal;
              if (how === 'throws') throw new Error('thrown');
              if (how === 'returns') return 'returned';
              if (latency === undefined) return never();
              return clock.sleep(latency).then(() => {
                if (how === 'rejects') throw new Error('failed');
                return 'ok';
              });
            };
            const ending = endingOf(policy.execute(work), clock);
            await clock.runAll();
            const settled = await ending;
            expect(deadlineTimersOf(clock).size).toBe(0);
            return { ...settled, seen, aborted: signal?.aborted };
          };
          expect(await run(true)).toEqual(await run(false));
        },
      ),
      { numRuns: 200 },
    );
    await new Promise((r) => setImmediate(r));
    expect(unhandled()).toEqual([]);
  });

  it('called with no options while an ambient context is current, it still inherits that context', async () => {
    const clock = new VirtualClock();
    const t = timeout(1000, { clock });
    let deadline = NaN;
    await budget(200, { clock }).execute((ctx) => {
      const previous = setAmbientContextProvider(() => ctx);
      try {
        return t.execute((c) => {
          deadline = c.deadline;
        });
      } finally {
        setAmbientContextProvider(previous);
      }
    });
    expect(deadline).toBe(200);
  });

  it('called with no options and no function, it rejects as any call does', async () => {
    await expect(timeout(10).execute(42 as never)).rejects.toThrow(
      /execute\(fn\): expected a function/,
    );
  });
});
