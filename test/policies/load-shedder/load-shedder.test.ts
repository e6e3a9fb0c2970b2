import { describe, expect, it } from 'vitest';
import type { Priority } from '../../../src/core/context.js';
import { ConfigError, TimeoutError, isBulwarkError } from '../../../src/core/errors.js';
import { LoadShedError } from '../../../src/policies/load-shedder/errors.js';
import { CallContext } from '../../../src/core/context.js';
import { pipeline, terminalStep } from '../../../src/core/pipeline.js';
import { adaptive } from '../../../src/policies/load-shedder/limits/adaptive.js';
import type { LimitSample, Limiter } from '../../../src/policies/load-shedder/limits/limiter.js';
import {
  EventLoopDelayProbe,
  loadShedder,
  type LoadShedderOptions,
  type PressureProbe,
} from '../../../src/policies/load-shedder/load-shedder.js';
import { timeout } from '../../../src/policies/timeout.js';
import { VirtualClock } from '../../../src/testing/index.js';

const flush = () => new Promise((resolve) => setImmediate(resolve));

interface Gate {
  promise: Promise<string>;
  open(value?: string): void;
  fail(error: unknown): void;
}

function gate(): Gate {
  let open!: (v: string) => void;
  let fail!: (e: unknown) => void;
  const promise = new Promise<string>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open: (v = 'ok') => open(v), fail };
}

/** Starts a call that runs until its gate opens; `outcome` never rejects. */
function start(
  shedder: ReturnType<typeof loadShedder>,
  priority: Priority = 'normal',
  extra: { budget?: number; signal?: AbortSignal } = {},
) {
  const g = gate();
  let ran = false;
  const outcome = shedder
    .execute(
      () => {
        ran = true;
        return g.promise;
      },
      { priority, ...extra },
    )
    .then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
  return { gate: g, outcome, ran: () => ran };
}

async function shedReason(
  outcome: Promise<{ ok: boolean; error?: unknown }>,
): Promise<string | undefined> {
  const o = await outcome;
  return o.ok ? undefined : (o.error as LoadShedError).reason;
}

function make(options: LoadShedderOptions = {}) {
  const clock = new VirtualClock();
  return { clock, shedder: loadShedder({ clock, ...options }) };
}

/** A limiter whose limit the test sets, recording every sample. */
class ManualLimiter implements Limiter {
  readonly algorithm = 'manual';
  readonly adaptive = true;
  readonly min = 1;
  readonly max = 100;
  samples: LimitSample[] = [];
  constructor(public limit: number) {}
  onSample(sample: LimitSample): void {
    this.samples.push(sample);
  }
}

describe('loadShedder: the concurrency limit', () => {
  it('admits calls up to the limit and sheds the next with reason capacity', async () => {
    const { shedder } = make({ limit: 2 });
    const a = start(shedder, 'critical');
    const b = start(shedder, 'critical');
    const c = start(shedder, 'critical');
    const error = (await c.outcome) as { ok: false; error: LoadShedError };
    expect(error.ok).toBe(false);
    expect(error.error).toBeInstanceOf(LoadShedError);
    expect(isBulwarkError(error.error)).toBe(true);
    expect(error.error.code).toBe('ERR_LOAD_SHED');
    expect(error.error.reason).toBe('capacity');
    expect(error.error.retryAfterMs).toBe(1000);
    expect(error.error.message).toMatch(/2 calls in flight reached the limit of 2/);
    expect(c.ran()).toBe(false);
    expect(shedder.inFlight).toBe(2);
    a.gate.open();
    b.gate.open();
    expect(await a.outcome).toEqual({ ok: true, value: 'ok' });
    expect(shedder.inFlight).toBe(0);
  });

  it('builds rejections without a stack trace', async () => {
    const { shedder } = make({ limit: 1 });
    start(shedder);
    const { error } = (await start(shedder).outcome) as { error: Error };
    expect(error.stack ?? '').not.toMatch(/\n\s+at /);
  });

  it('frees the slot when a call fails, including a synchronous throw', async () => {
    const { shedder } = make({ limit: 1 });
    await expect(
      shedder.execute(() => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expect(shedder.execute(() => Promise.reject(new Error('late boom')))).rejects.toThrow(
      'late boom',
    );
    expect(shedder.inFlight).toBe(0);
    await expect(shedder.execute(() => 'fine')).resolves.toBe('fine');
  });

  it('is unlimited by default and exposes limit and inFlight', async () => {
    const { shedder } = make();
    expect(shedder.limit).toBe(Infinity);
    const calls = Array.from({ length: 50 }, () => start(shedder, 'low'));
    await flush();
    expect(shedder.inFlight).toBe(50);
    for (const c of calls) c.gate.open();
    await Promise.all(calls.map((c) => c.outcome));
    expect(shedder.inFlight).toBe(0);
  });
});

describe('loadShedder: priority shares', () => {
  it('lets each priority fill only its share of the limit (low 50 %, normal 80 %, high 95 %, critical 100 %)', async () => {
    const { shedder } = make({ limit: 20 });
    const admitted: Record<Priority, number> = { low: 0, normal: 0, high: 0, critical: 0 };
    for (const p of ['low', 'normal', 'high', 'critical'] as const) {
      for (;;) {
        const c = start(shedder, p);
        await flush();
        if (!c.ran()) {
          expect(await shedReason(c.outcome)).toBe(p === 'critical' ? 'capacity' : 'priority');
          break;
        }
        admitted[p]++;
      }
    }
    // Cumulative: each priority fills up to its share of 20, counting what is already in flight.
    expect(admitted).toEqual({ low: 10, normal: 6, high: 3, critical: 1 });
    expect(shedder.inFlight).toBe(20);
  });

  it('sheds low-priority work with reason priority while critical work still gets in', async () => {
    const { shedder } = make({ limit: 4 });
    start(shedder, 'low');
    start(shedder, 'low');
    const third = start(shedder, 'low');
    expect(await shedReason(third.outcome)).toBe('priority');
    const critical = start(shedder, 'critical');
    await flush();
    expect(critical.ran()).toBe(true);
  });

  it('lets any priority run when nothing is in flight, even with a limit of 1', async () => {
    const { shedder } = make({ limit: 1 });
    const low = start(shedder, 'low');
    await flush();
    expect(low.ran()).toBe(true);
    expect(await shedReason(start(shedder, 'critical').outcome)).toBe('capacity');
  });

  it('takes configured shares', async () => {
    const { shedder } = make({ limit: 10, priorityShares: { low: 0.2 } });
    start(shedder, 'low');
    start(shedder, 'low');
    expect(await shedReason(start(shedder, 'low').outcome)).toBe('priority');
    expect(shedder.priorityShares).toEqual({ critical: 1, high: 0.95, normal: 0.8, low: 0.2 });
  });

  it('reads the priority from the call context', async () => {
    const { shedder } = make({ limit: 2 });
    start(shedder, 'critical');
    await expect(shedder.execute(() => 1)).rejects.toMatchObject({ reason: 'priority' });
    await expect(shedder.execute(() => 1, { priority: 'critical' })).resolves.toBe(1);
  });
});

describe('loadShedder: minRemainingBudget', () => {
  it('rejects a call whose deadline leaves less than minRemainingBudget, before running it', async () => {
    const { shedder } = make({ minRemainingBudget: '100ms' });
    const c = start(shedder, 'critical', { budget: 80 });
    const o = (await c.outcome) as { error: LoadShedError };
    expect(o.error.reason).toBe('deadline');
    expect(o.error.retryAfterMs).toBeUndefined();
    expect(c.ran()).toBe(false);
  });

  it('admits calls with enough time left or no deadline', async () => {
    const { shedder } = make({ minRemainingBudget: 100 });
    await expect(shedder.execute(() => 1, { budget: 100 })).resolves.toBe(1);
    await expect(shedder.execute(() => 2)).resolves.toBe(2);
  });

  it('uses the tightest deadline of an enclosing pipeline', async () => {
    const clock = new VirtualClock();
    const p = pipeline(timeout(50, { clock }), loadShedder({ minRemainingBudget: 60 }));
    await expect(p.execute(() => 1)).rejects.toMatchObject({ reason: 'deadline' });
  });
});

describe('loadShedder: event-loop pressure', () => {
  const probe = (delay: { ms: number }): PressureProbe => ({ eventLoopDelay: () => delay.ms });

  it('sheds non-critical work while the event-loop delay is above maxEventLoopDelay', async () => {
    const delay = { ms: 250 };
    const { shedder } = make({ maxEventLoopDelay: 100, pressure: probe(delay) });
    for (const p of ['low', 'normal', 'high'] as const) {
      await expect(shedder.execute(() => 1, { priority: p })).rejects.toMatchObject({
        reason: 'event-loop',
        retryAfterMs: 1000,
      });
    }
    delay.ms = 100;
    await expect(shedder.execute(() => 1)).resolves.toBe(1);
  });

  it('exempts critical work', async () => {
    const { shedder } = make({ maxEventLoopDelay: '50ms', pressure: probe({ ms: 10_000 }) });
    await expect(shedder.execute(() => 'kept', { priority: 'critical' })).resolves.toBe('kept');
  });

  it('does not read the probe when maxEventLoopDelay is not set', async () => {
    let reads = 0;
    const { shedder } = make({ pressure: { eventLoopDelay: () => ++reads } });
    await shedder.execute(() => 1);
    expect(reads).toBe(0);
  });

  it('has a perf_hooks default probe that starts on first read and reports ms ≥ 0', () => {
    const p = new EventLoopDelayProbe();
    expect(p.eventLoopDelay()).toBe(0);
    expect(p.eventLoopDelay()).toBeGreaterThanOrEqual(0);
  });
});

describe('loadShedder: queue', () => {
  it('queues a call that finds no slot and runs it when one frees', async () => {
    const { shedder } = make({ limit: 1, queue: { maxSize: 2 } });
    const a = start(shedder);
    const b = start(shedder);
    const c = start(shedder);
    await flush();
    expect(shedder.queued).toBe(2);
    expect(await shedReason(start(shedder).outcome)).toBe('capacity');
    a.gate.open();
    await flush();
    expect(b.ran()).toBe(true);
    expect(c.ran()).toBe(false);
    expect(shedder.inFlight).toBe(1);
    b.gate.open();
    c.gate.open();
    expect(await c.outcome).toEqual({ ok: true, value: 'ok' });
    expect(shedder.queued).toBe(0);
  });

  it('serves higher priorities first', async () => {
    const { shedder } = make({ limit: 1, queue: { maxSize: 5 } });
    const first = start(shedder, 'critical');
    const normal = start(shedder, 'normal');
    const critical = start(shedder, 'critical');
    await flush();
    first.gate.open();
    await flush();
    expect(critical.ran()).toBe(true);
    expect(normal.ran()).toBe(false);
  });

  it('lets a queued call go after the queue timeout with reason capacity', async () => {
    const { clock, shedder } = make({ limit: 1, queue: { maxSize: 1, timeout: 100 } });
    start(shedder);
    const waiting = start(shedder);
    await clock.advance(99);
    expect(shedder.queued).toBe(1);
    await clock.advance(1);
    expect(await shedReason(waiting.outcome)).toBe('capacity');
    expect(shedder.queued).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('uses the short timeout once the queue has stood non-empty for an interval (CoDel)', async () => {
    const { clock, shedder } = make({
      limit: 1,
      queue: { maxSize: 10, timeout: 1000, overloadTimeout: 5, interval: 100 },
    });
    start(shedder);
    const early = start(shedder);
    await clock.advance(150);
    // The queue has not been empty for 150 ms: a new waiter gets 5 ms, not 1 s.
    const late = start(shedder);
    await clock.advance(5);
    expect(await shedReason(late.outcome)).toBe('capacity');
    expect(shedder.queued).toBe(1);
    await clock.advance(845);
    expect(await shedReason(early.outcome)).toBe('capacity');
  });

  it('drops a stale waiter when a slot frees in a standing queue, and serves a fresh one', async () => {
    const { clock, shedder } = make({
      limit: 1,
      queue: { maxSize: 10, timeout: 1000, overloadTimeout: 5, interval: 100 },
    });
    const running = start(shedder);
    const stale = start(shedder);
    await clock.advance(200);
    const fresh = start(shedder);
    await clock.advance(2);
    running.gate.open();
    await flush();
    expect(await shedReason(stale.outcome)).toBe('capacity');
    expect(fresh.ran()).toBe(true);
  });

  it('keeps critical waiters on the long timeout in a standing queue', async () => {
    const { clock, shedder } = make({
      limit: 1,
      queue: { maxSize: 10, timeout: 1000, overloadTimeout: 5, interval: 100 },
    });
    const running = start(shedder, 'critical');
    start(shedder, 'low');
    await clock.advance(150);
    const critical = start(shedder, 'critical');
    const normal = start(shedder, 'normal');
    await clock.advance(50);
    expect(await shedReason(normal.outcome)).toBe('capacity');
    running.gate.open();
    await flush();
    expect(critical.ran()).toBe(true);
  });

  it('serves the newest waiter first while the queue stands, when lifo is set', async () => {
    const { clock, shedder } = make({
      limit: 1,
      queue: { maxSize: 10, timeout: 1000, overloadTimeout: 50, interval: 20, lifo: true },
    });
    const running = start(shedder);
    const older = start(shedder);
    await clock.advance(10);
    const newer = start(shedder);
    await clock.advance(15);
    running.gate.open();
    await flush();
    expect(newer.ran()).toBe(true);
    expect(older.ran()).toBe(false);
  });

  it('serves FIFO while the queue is not standing, even when lifo is set', async () => {
    const { shedder } = make({ limit: 1, queue: { maxSize: 10, lifo: true } });
    const running = start(shedder);
    const older = start(shedder);
    start(shedder);
    running.gate.open();
    await flush();
    expect(older.ran()).toBe(true);
  });

  it('lets go of a lower-priority waiter to make room for higher-priority work when full', async () => {
    const { shedder } = make({ limit: 1, queue: { maxSize: 1 } });
    start(shedder, 'critical');
    const low = start(shedder, 'low');
    const critical = start(shedder, 'critical');
    expect(await shedReason(low.outcome)).toBe('priority');
    expect(shedder.queued).toBe(1);
    // Work of the same priority does not displace anyone.
    expect(await shedReason(start(shedder, 'critical').outcome)).toBe('capacity');
    expect(critical.ran()).toBe(false);
  });

  it('removes a waiter whose caller aborts at once, with the caller reason, and leaks no slot', async () => {
    const { clock, shedder } = make({ limit: 1, queue: { maxSize: 3, timeout: 1000 } });
    const running = start(shedder);
    const controller = new AbortController();
    const waiting = start(shedder, 'normal', { signal: controller.signal });
    await flush();
    expect(shedder.queued).toBe(1);
    const reason = new Error('caller gave up');
    controller.abort(reason);
    expect(await waiting.outcome).toEqual({ ok: false, error: reason });
    expect(shedder.queued).toBe(0);
    expect(clock.pending).toBe(0);
    running.gate.open();
    await running.outcome;
    expect(shedder.inFlight).toBe(0);
    expect(waiting.ran()).toBe(false);
  });

  it('times a waiter out with its own deadline', async () => {
    const { clock, shedder } = make({ limit: 1, queue: { maxSize: 3, timeout: 1000 } });
    start(shedder);
    const waiting = start(shedder, 'normal', { budget: 30 });
    await clock.advance(30);
    const o = (await waiting.outcome) as { error: unknown };
    expect(o.error).toBeInstanceOf(TimeoutError);
    expect(shedder.queued).toBe(0);
  });

  it('rechecks minRemainingBudget when a waiter reaches the front', async () => {
    const { clock, shedder } = make({ limit: 1, minRemainingBudget: 50, queue: { maxSize: 3 } });
    const running = start(shedder);
    const waiting = start(shedder, 'normal', { budget: 80 });
    await clock.advance(40);
    running.gate.open();
    expect(await shedReason(waiting.outcome)).toBe('deadline');
  });

  it('keeps a lower-priority waiter queued while only higher priorities fit', async () => {
    const { shedder } = make({ limit: 4, queue: { maxSize: 3 } });
    const a = start(shedder, 'critical');
    start(shedder, 'critical');
    start(shedder, 'critical');
    start(shedder, 'critical');
    const low = start(shedder, 'low');
    a.gate.open();
    await flush();
    // 3 in flight: low may fill 2 of 4, so it keeps waiting.
    expect(low.ran()).toBe(false);
    expect(shedder.queued).toBe(1);
  });
});

describe('loadShedder: adaptive limits', () => {
  it('feeds the limiter the call time on the clock and the in-flight count at admission', async () => {
    const limiter = new ManualLimiter(10);
    const { clock, shedder } = make({ limit: limiter });
    const a = start(shedder);
    await clock.advance(5);
    const b = start(shedder);
    await clock.advance(20);
    a.gate.open();
    await a.outcome;
    b.gate.open();
    await b.outcome;
    expect(limiter.samples).toEqual([
      { rtt: 25, inFlight: 1, dropped: false, now: 25 },
      { rtt: 20, inFlight: 2, dropped: false, now: 25 },
    ]);
  });

  it('reports timeouts and downstream sheds as drops, and ignores other errors and caller aborts', async () => {
    const limiter = new ManualLimiter(10);
    const { clock, shedder } = make({ limit: limiter });
    await shedder.execute(() => Promise.reject(new TimeoutError('attempt', 5))).catch(() => {});
    await shedder
      .execute(() => Promise.reject(new LoadShedError('capacity', 'downstream')))
      .catch(() => {});
    await shedder.execute(() => Promise.reject(new Error('bad request'))).catch(() => {});
    const controller = new AbortController();
    const aborted = start(shedder, 'normal', { signal: controller.signal });
    controller.abort(new Error('bye'));
    await aborted.outcome;
    aborted.gate.fail(new Error('after abort'));
    await clock.advance(1);
    expect(limiter.samples.map((s) => s.dropped)).toEqual([true, true]);
  });

  it('does not count work abandoned for another reason (a losing hedge) as a drop', async () => {
    const limiter = new ManualLimiter(10);
    const { clock, shedder } = make({ limit: limiter });
    const attempt = CallContext.root(clock, Infinity).child(Infinity, 'attempt', Infinity);
    const g = gate();
    const call = attempt
      .guard(() => g.promise, { invoke: (c, f) => shedder.run(c, f, terminalStep) })
      .catch((e: unknown) => e);
    attempt.abort(new Error('hedge lost'));
    expect(await call).toEqual(new Error('hedge lost'));
    g.fail(new Error('cancelled'));
    await flush();
    expect(limiter.samples).toEqual([]);
    expect(shedder.inFlight).toBe(0);
  });

  it('counts a result that arrives after the deadline as a drop', async () => {
    const limiter = new ManualLimiter(10);
    const { clock, shedder } = make({ limit: limiter });
    const late = start(shedder, 'normal', { budget: 10 });
    await clock.advance(15);
    expect(((await late.outcome) as { error: unknown }).error).toBeInstanceOf(TimeoutError);
    late.gate.open();
    await flush();
    expect(limiter.samples).toEqual([{ rtt: 15, inFlight: 1, dropped: true, now: 15 }]);
    expect(shedder.inFlight).toBe(0);
  });

  it('holds the slot of a call that outlives its deadline until the work really ends', async () => {
    const { clock, shedder } = make({ limit: 1 });
    const slow = start(shedder, 'normal', { budget: 10 });
    await clock.advance(10);
    await slow.outcome;
    expect(shedder.inFlight).toBe(1);
    slow.gate.open();
    await flush();
    expect(shedder.inFlight).toBe(0);
  });

  it('does not read the clock for a fixed limit', async () => {
    let reads = 0;
    const clock = new VirtualClock();
    const counting = { ...clock, now: () => (reads++, clock.now()) } as unknown as VirtualClock;
    const shedder = loadShedder({ limit: 5, clock: counting });
    await shedder.execute(() => 1);
    expect(reads).toBe(0);
  });

  it('announces limit changes and follows the new limit', async () => {
    const limiter = new ManualLimiter(1);
    const { shedder } = make({ limit: limiter });
    const changes: number[] = [];
    shedder.on('limitChange', (e) => changes.push(e.limit));
    const a = start(shedder, 'critical');
    expect(await shedReason(start(shedder, 'critical').outcome)).toBe('capacity');
    limiter.limit = 3;
    const b = start(shedder, 'critical');
    await flush();
    expect(b.ran()).toBe(true);
    expect(shedder.limit).toBe(3);
    expect(changes).toEqual([3]);
    a.gate.open();
    b.gate.open();
  });

  it('admits queued calls when the limit grows after a sample', async () => {
    const limiter = new (class extends ManualLimiter {
      override onSample(sample: LimitSample): void {
        super.onSample(sample);
        this.limit = 3;
      }
    })(1);
    const { shedder } = make({ limit: limiter, queue: { maxSize: 5 } });
    const first = start(shedder, 'critical');
    const w1 = start(shedder, 'critical');
    const w2 = start(shedder, 'critical');
    const w3 = start(shedder, 'critical');
    first.gate.open();
    await flush();
    expect([w1.ran(), w2.ran(), w3.ran()]).toEqual([true, true, true]);
  });

  it('grows an adaptive limit while calls stay fast and the limit is used', async () => {
    const { clock, shedder } = make({
      limit: adaptive({ algorithm: 'aimd', initial: 4, max: 50 }),
    });
    for (let round = 0; round < 40; round++) {
      const calls = Array.from({ length: shedder.limit }, () => start(shedder, 'critical'));
      await clock.advance(10);
      for (const c of calls) c.gate.open();
      await Promise.all(calls.map((c) => c.outcome));
    }
    expect(shedder.limit).toBeGreaterThan(4);
  });
});

describe('loadShedder: events and validation', () => {
  it('emits shed with the priority and reason', async () => {
    const { shedder } = make({ limit: 1, minRemainingBudget: 10 });
    const events: unknown[] = [];
    const sub = shedder.on('shed', (e) => events.push(e));
    start(shedder, 'critical');
    await start(shedder, 'high').outcome;
    await start(shedder, 'low', { budget: 5 }).outcome;
    sub.dispose();
    await start(shedder, 'low').outcome;
    expect(events).toEqual([
      { priority: 'high', reason: 'capacity' },
      { priority: 'low', reason: 'deadline' },
    ]);
  });

  it('runs on the clock of the pipeline it is in', async () => {
    const clock = new VirtualClock();
    const shedder = loadShedder({ limit: 1, queue: { maxSize: 1, timeout: 50 } });
    const p = pipeline(timeout(Infinity, { clock }), shedder);
    expect(shedder.clock).toBeUndefined();
    const g = gate();
    void p.execute(() => g.promise);
    const waiting = p.execute(() => 1).catch((e: unknown) => e);
    await clock.advance(50);
    expect(await waiting).toMatchObject({ reason: 'capacity' });
    g.open();
  });

  it('lists every bad option with its path', () => {
    let error: unknown;
    try {
      loadShedder({
        limit: 0,
        priorityShares: { low: 2, urgent: 1 } as never,
        minRemainingBudget: -1,
        maxEventLoopDelay: 'soon',
        pressure: {} as never,
        queue: { maxSize: -1, lifo: 'yes' } as never,
        isDrop: 5 as never,
        colour: 'red',
      } as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => p.path)).toEqual([
      'loadShedder.colour',
      'loadShedder.limit',
      'loadShedder.priorityShares.urgent',
      'loadShedder.priorityShares.low',
      'loadShedder.minRemainingBudget',
      'loadShedder.maxEventLoopDelay',
      'loadShedder.isDrop',
      'loadShedder.pressure',
      'loadShedder.queue.maxSize',
      'loadShedder.queue.lifo',
    ]);
  });

  it('requires queue.maxSize when a queue is given', () => {
    expect(() => loadShedder({ queue: {} as never })).toThrow(/loadShedder\.queue\.maxSize/);
  });

  it('accepts a limiter as the limit', () => {
    const limiter = adaptive({ algorithm: 'vegas', initial: 7 });
    const shedder = loadShedder({ limit: limiter });
    expect(shedder.limiter).toBe(limiter);
    expect(shedder.limit).toBe(7);
    expect(shedder.kind).toBe('loadShedder');
  });
});

describe('loadShedder: one timer for its queue', () => {
  it('keeps 1,000 queued waiters on one clock timer, and expires them all on time', async () => {
    const clock = new VirtualClock();
    const shedder = loadShedder({
      limit: 1,
      queue: { maxSize: 2_000, timeout: 100 },
      clock,
    });
    const g = gate();
    const holder = shedder.execute(() => g.promise);
    const waiting: Promise<unknown>[] = [];
    for (let i = 0; i < 1_000; i++) {
      waiting.push(shedder.execute(() => i).catch((e: unknown) => e));
      if (i % 100 === 0) await clock.advance(1);
    }
    await flush();
    expect(clock.pending).toBeLessThanOrEqual(2);
    await clock.advance(100);
    const outcomes = await Promise.all(waiting);
    expect(outcomes.every((o) => o instanceof LoadShedError)).toBe(true);
    expect(clock.pending).toBe(0);
    g.open();
    await holder;
  });
});
