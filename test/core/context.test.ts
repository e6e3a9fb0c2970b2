import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CallContext, propertyKey } from '../../src/core/context.js';
import { TimeoutError } from '../../src/core/errors.js';
import { terminalStep } from '../../src/core/pipeline.js';
import { VirtualClock } from '../../src/testing/index.js';

const never = () => new Promise<never>(() => {});
/** The context's rarely used part (made on first use), to check what it allocates. */
const extrasOf = (ctx: CallContext) =>
  (ctx as unknown as { extras?: { controller?: unknown; properties?: unknown } }).extras;

describe('CallContext', () => {
  it('creates its AbortController only when signal is read, already aborted if the call was', () => {
    const ctx = CallContext.root(new VirtualClock(), Infinity);
    expect(extrasOf(ctx)).toBeUndefined(); // nothing rare made yet
    ctx.abort(new Error('gone'));
    expect(extrasOf(ctx)).toBeDefined();
    expect(extrasOf(ctx)!.controller).toBeUndefined();
    expect(ctx.signal.aborted).toBe(true);
    expect((ctx.signal.reason as Error).message).toBe('gone');
  });

  it('a child keeps the tighter deadline, and the parent scope and limit when those come first', async () => {
    const clock = new VirtualClock();
    const parent = CallContext.forCall(clock, 100, 100, undefined, undefined, undefined);
    const looser = parent.child(500, 'attempt', 500);
    const tighter = parent.child(50, 'attempt', 50);
    expect(looser.deadline).toBe(100);
    expect(tighter.deadline).toBe(50);
    const call = parent.guard(() => looser.guard(never, terminalStep), terminalStep);
    const outcome = call.catch((e: unknown) => e);
    await clock.advance(100);
    const error = (await outcome) as TimeoutError;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.scope).toBe('budget');
    expect(error.timeoutMs).toBe(100);
  });

  it('keeps typed per-call properties, with no Map until the first set', () => {
    const FLAG = propertyKey<boolean>('flag');
    const COUNT = propertyKey<number>('count');
    const SAME_NAME = propertyKey<boolean>('flag');
    const ctx = CallContext.root(new VirtualClock(), Infinity);
    expect(ctx.get(FLAG)).toBeUndefined();
    expect(extrasOf(ctx)?.properties).toBeUndefined();
    ctx.set(FLAG, true);
    ctx.set(COUNT, 3);
    expect(ctx.get(FLAG)).toBe(true);
    expect(ctx.get(COUNT)).toBe(3);
    // Keys compare by identity: the same name is another key.
    expect(ctx.get(SAME_NAME)).toBeUndefined();
  });

  describe('forCall', () => {
    it('without a parent makes a root with the given deadline, limit and per-call data', () => {
      const clock = new VirtualClock();
      const ctx = CallContext.forCall(clock, 200, 200, 'high', 'k-1', 'fp');
      expect(ctx.parent).toBeUndefined();
      expect([
        ctx.deadline,
        ctx.attempt,
        ctx.priority,
        ctx.idempotencyKey,
        ctx.fingerprint,
      ]).toEqual([200, 1, 'high', 'k-1', 'fp']);
    });

    it('under an explicit parent shares its key unless the call overrides per-call data', () => {
      const clock = new VirtualClock();
      const parent = CallContext.forCall(clock, 100, 100, 'low', undefined, undefined);
      const nested = CallContext.forCall(
        clock,
        50,
        50,
        undefined,
        undefined,
        undefined,
        parent,
        true,
      );
      expect(nested.idempotencyKey).toBe(parent.idempotencyKey);
      expect(nested.priority).toBe('low');
      expect(nested.deadline).toBe(50);
      const own = CallContext.forCall(clock, 500, 500, 'high', undefined, undefined, parent, true);
      expect(own.idempotencyKey).not.toBe(parent.idempotencyKey);
      expect(own.priority).toBe('high');
      expect(own.deadline).toBe(100);
    });

    it('under an ambient parent never shares the key, but keeps its priority', () => {
      const clock = new VirtualClock();
      const parent = CallContext.forCall(clock, Infinity, Infinity, 'critical', 'req', undefined);
      const inner = CallContext.forCall(
        clock,
        Infinity,
        Infinity,
        undefined,
        undefined,
        undefined,
        parent,
      );
      expect(inner.priority).toBe('critical');
      expect(inner.idempotencyKey).not.toBe('req');
    });

    it('property: two contexts share an idempotency key exactly when they belong to one logical call', () => {
      // Each node: made by an attempt (child), an explicit parent (inherits the key), an
      // ambient parent (a call of its own), or a root; with or without a key of its own.
      const node = fc.record({
        parent: fc.nat(),
        how: fc.constantFrom('attempt', 'explicit', 'ambient', 'root'),
        key: fc.option(fc.constantFrom('k1', 'k2'), { nil: undefined }),
        priority: fc.option(fc.constantFrom('high' as const, 'normal' as const), {
          nil: undefined,
        }),
      });
      fc.assert(
        fc.property(
          fc.array(node, { minLength: 1, maxLength: 12 }),
          fc.boolean(),
          (nodes, readFirst) => {
            const clock = new VirtualClock();
            const made: CallContext[] = [];
            const call: number[] = []; // logical call id of each context
            const given: Array<string | undefined> = []; // key given to its logical call
            for (const n of nodes) {
              const parent = made.length === 0 ? undefined : made[n.parent % made.length];
              const pi = made.length === 0 ? -1 : n.parent % made.length;
              let c: CallContext;
              if (parent === undefined || n.how === 'root') {
                c = CallContext.forCall(clock, Infinity, Infinity, n.priority, n.key, undefined);
                call.push(made.length);
                given.push(n.key);
              } else if (n.how === 'attempt') {
                c = parent.child(Infinity, 'attempt', Infinity);
                call.push(call[pi]!);
                given.push(given[pi]);
              } else {
                const explicit = n.how === 'explicit';
                c = CallContext.forCall(
                  clock,
                  Infinity,
                  Infinity,
                  n.priority,
                  n.key,
                  undefined,
                  parent,
                  explicit,
                );
                const same = explicit && n.priority === undefined && n.key === undefined;
                call.push(same ? call[pi]! : made.length);
                given.push(same ? given[pi] : n.key);
              }
              made.push(c);
              if (readFirst) void c.idempotencyKey; // generating early or late is the same
            }
            const keys = made.map((c) => c.idempotencyKey);
            for (let i = 0; i < made.length; i++) {
              if (given[i] !== undefined) expect(keys[i]).toBe(given[i]);
              for (let j = 0; j < i; j++) {
                if (call[i] === call[j]) expect(keys[i]).toBe(keys[j]);
                else if (given[i] === undefined || given[j] === undefined)
                  expect(keys[i]).not.toBe(keys[j]);
              }
            }
          },
        ),
      );
    });

    it('a nested deadline is always the tighter of the two (property)', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 10_000 }),
          fc.integer({ min: 0, max: 10_000 }),
          fc.boolean(),
          (outer, inner, inheritKey) => {
            const clock = new VirtualClock();
            const parent = CallContext.forCall(
              clock,
              outer,
              outer,
              undefined,
              undefined,
              undefined,
            );
            const c = CallContext.forCall(
              clock,
              inner,
              inner,
              undefined,
              undefined,
              undefined,
              parent,
              inheritKey,
            );
            expect(c.deadline).toBe(Math.min(outer, inner));
            expect(c.attempt).toBe(1);
            expect(c.clock).toBe(clock);
          },
        ),
      );
    });
  });
});

describe('CallContext subscribers', () => {
  it('property: an abort reaches exactly the subscribers present, once each, whatever joined and left', () => {
    const op = fc.oneof(
      fc.record({ add: fc.constantFrom('context', 'plain') }),
      fc.record({ remove: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.boolean(), (ops, abortAtEnd) => {
        const clock = new VirtualClock();
        const parent = CallContext.forCall(
          clock,
          Infinity,
          Infinity,
          undefined,
          undefined,
          undefined,
        );
        const heard = new Map<object, number>();
        const present: object[] = [];
        for (const o of ops) {
          if ('add' in o) {
            let s: { abort(reason: unknown): void };
            if (o.add === 'context') {
              const c = parent.child(Infinity, 'attempt', Infinity);
              const abort = c.abort.bind(c);
              c.abort = (reason: unknown) => {
                heard.set(c, (heard.get(c) ?? 0) + 1);
                abort(reason);
              };
              s = c;
            } else {
              s = { abort: () => heard.set(s, (heard.get(s) ?? 0) + 1) };
            }
            parent.subscribe(s);
            present.push(s);
          } else if (present.length > 0) {
            const [s] = present.splice(o.remove % present.length, 1);
            parent.unsubscribe(s as CallContext);
            parent.unsubscribe(s as CallContext); // leaving twice is harmless
          }
          expect(parent.subscriberCount).toBe(present.length);
        }
        if (!abortAtEnd) return;
        parent.abort(new Error('gone'));
        expect(parent.subscriberCount).toBe(0);
        for (const s of present) expect(heard.get(s)).toBe(1);
        expect([...heard.values()].reduce((a, b) => a + b, 0)).toBe(present.length);
      }),
    );
  });
});

describe('CallContext at scale', () => {
  it('10,000 children of one parent subscribe and leave in O(1), in any order', async () => {
    const clock = new VirtualClock();
    const parent = CallContext.forCall(clock, Infinity, Infinity, undefined, undefined, undefined);
    const subs = (): number => parent.subscriberCount;
    const resolvers: Array<() => void> = [];
    const calls = Array.from({ length: 10_000 }, () =>
      CallContext.forCall(clock, 1000, 1000, undefined, undefined, undefined, parent).guard(
        () => new Promise<void>((r) => resolvers.push(r)),
        terminalStep,
      ),
    );
    expect(subs()).toBe(10_000);
    // Settle from the middle out: an array with lastIndexOf would scan for each.
    for (let i = 5_000; i < 10_000; i++) resolvers[i]!();
    for (let i = 4_999; i >= 0; i--) resolvers[i]!();
    await Promise.all(calls);
    expect(subs()).toBe(0);
    const parentAbort = new Error('parent gone');
    const late = CallContext.forCall(clock, 1000, 1000, undefined, undefined, undefined, parent);
    const outcome = late.guard(never, terminalStep).catch((e: unknown) => e);
    parent.abort(parentAbort);
    expect(await outcome).toBe(parentAbort);
  });

  it('eleven calls on one caller signal add one listener and print no MaxListenersExceededWarning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const clock = new VirtualClock();
      const controller = new AbortController();
      const calls = Array.from({ length: 11 }, () =>
        CallContext.forCall(clock, Infinity, Infinity, undefined, undefined, undefined).guard(
          never,
          terminalStep,
          controller.signal,
        ),
      );
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
      const reason = new Error('caller left');
      controller.abort(reason);
      for (const outcome of await Promise.allSettled(calls))
        expect(outcome).toEqual({ status: 'rejected', reason });
      // Settled calls leave nothing behind, and a later call listens afresh.
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      const other = new AbortController();
      const done = Array.from({ length: 11 }, (_, i) =>
        CallContext.forCall(clock, Infinity, Infinity, undefined, undefined, undefined).guard(
          () => i,
          terminalStep,
          other.signal,
        ),
      );
      await Promise.all(done);
      expect(getEventListeners(other.signal, 'abort')).toHaveLength(0);
      await new Promise((r) => setImmediate(r));
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
