import { describe, expect, it } from 'vitest';
import {
  BulkheadRejectedError,
  ConfigError,
  pipeline,
  TimeoutError,
  timeout,
} from '../../src/index.js';
import { CallContext } from '../../src/core/context.js';
import { terminalStep } from '../../src/core/pipeline.js';
import { bulkhead, BulkheadPolicy } from '../../src/policies/bulkhead.js';
import { VirtualClock } from '../../src/testing/index.js';

/** A hand-released operation: `release(i)` settles call i. */
function gate() {
  const pending: { resolve: (v: string) => void; reject: (e: unknown) => void }[] = [];
  const started: number[] = [];
  let n = 0;
  const op = () => {
    const i = n++;
    started.push(i);
    return new Promise<string>((resolve, reject) => {
      pending[i] = { resolve, reject };
    });
  };
  return { op, started, pending };
}

const outcome = (p: Promise<unknown>) =>
  p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );

const tick = () => new Promise((r) => setImmediate(r));

describe('bulkhead', () => {
  it('runs at most maxConcurrent calls at once and rejects the next as full when there is no queue', async () => {
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 2, clock });
    const g = gate();
    const a = b.execute(g.op);
    const c = b.execute(g.op);
    let ran = false;
    const third = await outcome(
      b.execute(() => {
        ran = true;
        return 'x';
      }),
    );
    expect(ran).toBe(false);
    expect(b.inFlight).toBe(2);
    const error = (third as { error: BulkheadRejectedError }).error;
    expect(error).toBeInstanceOf(BulkheadRejectedError);
    expect(error.reason).toBe('full');
    expect(error.code).toBe('ERR_BULKHEAD_FULL');
    g.pending[0]!.resolve('a');
    g.pending[1]!.resolve('c');
    expect(await a).toBe('a');
    expect(await c).toBe('c');
    expect(b.inFlight).toBe(0);
  });

  it('builds the full rejection without a stack trace and names the limit and the bulkhead', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 3, name: 'payments' });
    const g = gate();
    void b.execute(g.op);
    for (let i = 0; i < 3; i++) void b.execute(g.op);
    const error = ((await outcome(b.execute(g.op))) as { error: BulkheadRejectedError }).error;
    expect(error.message).toBe(
      'payments: bulkhead is full (maxConcurrent 1 running, maxQueue 3 waiting)',
    );
    expect(error.stack ?? '').not.toMatch(/\n\s+at /);
    for (let i = 0; i < 4; i++) {
      g.pending[i]!.resolve('ok');
      await tick();
    }
    expect(b.inFlight + b.queued).toBe(0);
  });

  it('queues up to maxQueue calls and starts them in arrival order as slots free', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 3 });
    const g = gate();
    const calls = [0, 1, 2, 3].map(() => b.execute(g.op));
    expect(b.inFlight).toBe(1);
    expect(b.queued).toBe(3);
    expect(g.started).toEqual([0]);
    for (let i = 0; i < 4; i++) {
      g.pending[i]!.resolve(`r${i}`);
      await tick();
      expect(g.started).toEqual([0, 1, 2, 3].slice(0, Math.min(i + 2, 4)));
    }
    expect(await Promise.all(calls)).toEqual(['r0', 'r1', 'r2', 'r3']);
    expect(b.inFlight).toBe(0);
    expect(b.queued).toBe(0);
  });

  it('rejects as full once the queue holds maxQueue calls', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const g = gate();
    const first = b.execute(g.op);
    const second = b.execute(g.op);
    const third = await outcome(b.execute(g.op));
    expect((third as { error: BulkheadRejectedError }).error.reason).toBe('full');
    expect(b.queued).toBe(1);
    g.pending[0]!.resolve('1');
    await tick();
    g.pending[1]!.resolve('2');
    expect([await first, await second]).toEqual(['1', '2']);
  });

  it('hands a freed slot to the head of the queue, not to a newcomer', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 2 });
    const g = gate();
    void b.execute(g.op);
    void b.execute(g.op);
    g.pending[0]!.resolve('done');
    await tick();
    // The queued call got the slot; a newcomer now has to queue behind nobody but it.
    expect(g.started).toEqual([0, 1]);
    const late = b.execute(g.op);
    expect(b.queued).toBe(1);
    g.pending[1]!.resolve('x');
    await tick();
    g.pending[2]!.resolve('late');
    expect(await late).toBe('late');
  });

  it('frees the slot when fn fails, synchronously or not', async () => {
    const b = bulkhead({ maxConcurrent: 1 });
    const boom = new Error('boom');
    await expect(
      b.execute(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(b.inFlight).toBe(0);
    await expect(b.execute(() => Promise.reject(boom))).rejects.toBe(boom);
    expect(b.inFlight).toBe(0);
    expect(await b.execute(() => 7)).toBe(7);
  });

  it('rejects a call that waited queueTimeout with reason queue-timeout', async () => {
    const clock = new VirtualClock();
    const b = bulkhead({
      maxConcurrent: 1,
      maxQueue: 5,
      queueTimeout: '100ms',
      clock,
      name: 'search',
    });
    const g = gate();
    void b.execute(g.op);
    const waiting = outcome(b.execute(g.op));
    await clock.advance(99);
    expect(b.queued).toBe(1);
    await clock.advance(1);
    const error = ((await waiting) as { error: BulkheadRejectedError }).error;
    expect(error).toBeInstanceOf(BulkheadRejectedError);
    expect(error.reason).toBe('queue-timeout');
    expect(error.message).toBe(
      'search: bulkhead: no slot within queueTimeout 100 ms (maxConcurrent 1)',
    );
    expect(b.queued).toBe(0);
    expect(g.started).toEqual([0]);
  });

  it('times out queued calls in arrival order with one timer for the whole queue', async () => {
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 10, queueTimeout: 100, clock });
    const g = gate();
    void b.execute(g.op);
    const results: { at: number; i: number }[] = [];
    for (let i = 0; i < 5; i++) {
      void b.execute(g.op).catch(() => results.push({ at: clock.now(), i }));
      expect(clock.pending).toBeLessThanOrEqual(1);
      await clock.advance(10);
    }
    await clock.advance(200);
    expect(results).toEqual([0, 1, 2, 3, 4].map((i) => ({ at: 100 + 10 * i, i })));
    // Once the queue is empty the timer is not re-armed.
    expect(clock.pending).toBe(0);
  });

  it('keeps one queue timer even when a rejection listener queues another call', async () => {
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 3, queueTimeout: 100, clock });
    const g = gate();
    void b.execute(g.op);
    let requeued = 0;
    const late: Promise<unknown>[] = [];
    b.on('rejected', () => {
      if (requeued++ < 3) late.push(b.execute(g.op).catch((e: unknown) => e));
    });
    void b.execute(g.op).catch(() => {});
    void b.execute(g.op).catch(() => {});
    for (let t = 0; t < 50; t++) {
      expect(clock.pending).toBeLessThanOrEqual(1);
      await clock.advance(10);
    }
    expect(late).toHaveLength(3);
    expect(
      (await Promise.all(late)).every(
        (e) => (e as BulkheadRejectedError).reason === 'queue-timeout',
      ),
    ).toBe(true);
    expect(b.queued).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('does not time out a call that got a slot before queueTimeout', async () => {
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 2, queueTimeout: 100, clock });
    const g = gate();
    void b.execute(g.op);
    const queued = b.execute(g.op);
    await clock.advance(50);
    g.pending[0]!.resolve('first');
    await tick();
    // The queue emptied: on a VirtualClock its timer is cleared at once.
    expect(clock.pending).toBe(0);
    await clock.advance(100);
    g.pending[1]!.resolve('second');
    expect(await queued).toBe('second');
    await clock.runAll();
    expect(clock.pending).toBe(0);
  });

  it('on the system clock, keeps the process alive only while a call waits with a queue timeout', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeout: 60_000 });
    const timer = () =>
      (b as unknown as { timers: { timer: NodeJS.Timeout | undefined } }).timers.timer;
    const g = gate();
    void b.execute(g.op);
    const queued = b.execute(g.op);
    expect(timer()!.hasRef()).toBe(true);
    g.pending[0]!.resolve('a');
    await tick();
    // Left armed (no clearTimeout per waiter) but unref'd: an idle process may exit.
    expect(timer()!.hasRef()).toBe(false);
    g.pending[1]!.resolve('b');
    expect(await queued).toBe('b');
    void b.execute(g.op);
    void b.execute(g.op).catch(() => {});
    expect(timer()!.hasRef()).toBe(true);
    clearTimeout(timer());
  });

  it('removes a queued call at once when its caller aborts, and never leaks its slot', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 3 });
    const g = gate();
    const first = b.execute(g.op);
    const controller = new AbortController();
    const left = outcome(b.execute(g.op, { signal: controller.signal }));
    const after = b.execute(g.op);
    expect(b.queued).toBe(2);
    const reason = new Error('caller gave up');
    controller.abort(reason);
    expect(b.queued).toBe(1);
    expect((await left) as { error: unknown }).toEqual({ error: reason });
    g.pending[0]!.resolve('a');
    await tick();
    // The aborted caller never ran; the next one took the slot.
    expect(g.started).toEqual([0, 1]);
    g.pending[1]!.resolve('b');
    expect([await first, await after]).toEqual(['a', 'b']);
    expect(b.inFlight).toBe(0);
  });

  it('counts the queue wait against the call budget', async () => {
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 2, clock });
    const g = gate();
    void b.execute(g.op);
    let remaining = -1;
    const fits = b.execute(
      (ctx) => {
        remaining = ctx.remaining();
        return 'ran';
      },
      { budget: 80 },
    );
    const tooLate = outcome(b.execute(g.op, { budget: 20 }));
    await clock.advance(20);
    const error = ((await tooLate) as { error: TimeoutError }).error;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.scope).toBe('budget');
    expect(b.queued).toBe(1);
    await clock.advance(10);
    g.pending[0]!.resolve('x');
    expect(await fits).toBe('ran');
    expect(remaining).toBe(50);
    expect(b.inFlight).toBe(0);
  });

  it('rejects with the abort reason, without queuing, a call whose context already ended', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const g = gate();
    void b.execute(g.op);
    const ctx = CallContext.root(new VirtualClock(), Infinity);
    const reason = new Error('over');
    ctx.abort(reason);
    await expect(b.run(ctx, g.op, terminalStep)).rejects.toBe(reason);
    expect(b.queued).toBe(0);
  });

  it('leaves no subscription on the call context once a queued call starts or times out', async () => {
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 2, queueTimeout: 100, clock });
    const subscribed = new Set<unknown>();
    const track = (ctx: CallContext) => {
      const sub = ctx.subscribe.bind(ctx);
      const unsub = ctx.unsubscribe.bind(ctx);
      ctx.subscribe = (s) => (subscribed.add(s), sub(s));
      ctx.unsubscribe = (s) => (subscribed.delete(s), unsub(s));
      return ctx;
    };
    const g = gate();
    void b.run(CallContext.root(clock, Infinity), g.op, terminalStep);
    const served = b.run(track(CallContext.root(clock, Infinity)), g.op, terminalStep);
    expect(subscribed.size).toBe(1);
    g.pending[0]!.resolve('a');
    await tick();
    expect(subscribed.size).toBe(0);
    const expired = outcome(b.run(track(CallContext.root(clock, Infinity)), g.op, terminalStep));
    expect(subscribed.size).toBe(1);
    await clock.advance(100);
    expect(((await expired) as { error: BulkheadRejectedError }).error.reason).toBe(
      'queue-timeout',
    );
    expect(subscribed.size).toBe(0);
    g.pending[1]!.resolve('b');
    expect(await served).toBe('b');
  });

  it('frees the slot at an inner attempt timeout even when fn ignores its signal', async () => {
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 1, clock });
    const p = pipeline(b, timeout(100));
    const call = outcome(p.execute(() => new Promise(() => {})));
    expect(b.inFlight).toBe(1);
    await clock.advance(100);
    expect(((await call) as { error: TimeoutError }).error).toBeInstanceOf(TimeoutError);
    expect(b.inFlight).toBe(0);
  });

  it('keeps the slot of work still running when only the outer call gave up', async () => {
    // Without an inner timeout the bulkhead counts what really runs: the slot stays taken
    // until fn settles, even though the caller has its TimeoutError already.
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 1, clock });
    const g = gate();
    const call = outcome(b.execute(g.op, { budget: 50 }));
    await clock.advance(50);
    expect(((await call) as { error: unknown }).error).toBeInstanceOf(TimeoutError);
    expect(b.inFlight).toBe(1);
    g.pending[0]!.resolve('late');
    await tick();
    expect(b.inFlight).toBe(0);
  });

  it('emits rejected, queued, dequeued and abandoned events', async () => {
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 2, queueTimeout: 100, clock });
    const seen: string[] = [];
    b.on('rejected', (e) => seen.push(`rejected:${e.reason}:${e.inFlight}:${e.queued}`));
    b.on('queued', (e) => seen.push(`queued:${e.queued}`));
    b.on('dequeued', (e) => seen.push(`dequeued:${e.waitedMs}:${e.queued}`));
    const sub = b.on('abandoned', (e) => seen.push(`abandoned:${e.waitedMs}:${String(e.reason)}`));
    const g = gate();
    void b.execute(g.op);
    const controller = new AbortController();
    const abandoned = outcome(b.execute(g.op, { signal: controller.signal }));
    const served = b.execute(g.op);
    await outcome(b.execute(g.op));
    await clock.advance(10);
    controller.abort('bye');
    await abandoned;
    await clock.advance(20);
    g.pending[0]!.resolve('x');
    await tick();
    const timedOut = outcome(b.execute(g.op));
    await clock.advance(100);
    await timedOut;
    g.pending[1]!.resolve('y');
    await served;
    sub.dispose();
    expect(seen).toEqual([
      'queued:1',
      'queued:2',
      'rejected:full:1:2',
      'abandoned:10:bye',
      'dequeued:30:0',
      'queued:1',
      'rejected:queue-timeout:1:0',
    ]);
  });

  it('exposes its limits', () => {
    const b = bulkhead({ maxConcurrent: 4, maxQueue: Infinity, queueTimeout: '2s' });
    expect(b.kind).toBe('bulkhead');
    expect([b.maxConcurrent, b.maxQueue, b.queueTimeout]).toEqual([4, Infinity, 2000]);
  });

  describe('configuration', () => {
    it('names the path and the bad value', () => {
      expect(() => bulkhead({ maxConcurrent: 0 })).toThrow(
        new ConfigError([{ path: 'bulkhead.maxConcurrent', expected: 'integer ≥ 1', got: 0 }]),
      );
      expect(() => bulkhead({ maxConcurrent: 0 })).toThrow(
        'bulkhead.maxConcurrent: expected integer ≥ 1, got 0',
      );
    });

    it('requires maxConcurrent', () => {
      expect(() => bulkhead({} as never)).toThrow(
        'bulkhead.maxConcurrent: expected integer ≥ 1, got undefined',
      );
      expect(() => bulkhead(undefined as never)).toThrow(/bulkhead\.maxConcurrent/);
    });

    it('lists every problem at once', () => {
      let error: ConfigError | undefined;
      try {
        bulkhead({
          maxConcurrent: 2.5,
          maxQueue: -1,
          queueTimeout: 'soon',
          name: 7 as never,
          maxQeue: 3,
        } as never);
      } catch (e) {
        error = e as ConfigError;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect(error!.problems.map((p) => p.path).sort()).toEqual([
        'bulkhead.maxConcurrent',
        'bulkhead.maxQeue',
        'bulkhead.maxQueue',
        'bulkhead.name',
        'bulkhead.queueTimeout',
      ]);
    });

    it('uses the path it is given, for dependency()', () => {
      expect(() => new BulkheadPolicy({ maxConcurrent: -3 }, 'payments.bulkhead')).toThrow(
        'payments.bulkhead.maxConcurrent: expected integer ≥ 1, got -3',
      );
    });

    it('rejects a non-object', () => {
      expect(() => bulkhead(10 as never)).toThrow('bulkhead: expected an options object, got 10');
    });
  });
});
