import { describe, expect, it } from 'vitest';
import { ConfigError, isRetryableError, systemClock } from '../../src/index.js';
import {
  FaultError,
  faultyDependency,
  seededRandom,
  VirtualClock,
  type FaultyDependencyOptions,
} from '../../src/testing/index.js';

type Outcome =
  { ok: true; latency: number; at: number } | { ok: false; error: unknown; at: number };

/** Starts `n` calls `gap` ms apart and runs the clock until every one settled. */
async function run(
  options: Omit<FaultyDependencyOptions, 'clock'>,
  n: number,
  gap = 0,
): Promise<{ outcomes: Outcome[]; clock: VirtualClock; dep: ReturnType<typeof faultyDependency> }> {
  const clock = new VirtualClock();
  const dep = faultyDependency({ ...options, clock });
  const outcomes: Outcome[] = [];
  const pending: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const start = clock.now();
    pending.push(
      dep.call().then(
        (r) => void (outcomes[i] = { ok: true, latency: r.latency, at: clock.now() - start }),
        (error: unknown) => void (outcomes[i] = { ok: false, error, at: clock.now() - start }),
      ),
    );
    if (gap > 0) await clock.advance(gap);
  }
  await clock.runAll();
  await Promise.all(pending);
  return { outcomes, clock, dep };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

describe('seededRandom', () => {
  it('replays the same stream for a seed and differs across seeds', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const c = seededRandom(43);
    const xs = Array.from({ length: 100 }, () => a());
    expect(Array.from({ length: 100 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 100 }, () => c())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    // Roughly uniform: the mean of 10,000 draws is near 0.5.
    const r = seededRandom(1);
    let sum = 0;
    for (let i = 0; i < 10_000; i++) sum += r();
    expect(sum / 10_000).toBeCloseTo(0.5, 1);
  });
});

describe('faultyDependency', () => {
  const schedule: Omit<FaultyDependencyOptions, 'clock'> = {
    latency: { p50: 20, p99: 200 },
    failureRate: 0.2,
    hangs: 0,
    slowdowns: [{ from: 500, to: 1000, factor: 5, failureRate: 0.5 }],
    outages: [{ from: 1500, to: 2000 }],
  };

  it('replays the same latencies and faults for the same seed, and others for another seed', async () => {
    const summary = (o: Outcome[]) => o.map((x) => (x.ok ? `ok ${x.latency}` : `fail ${x.at}`));
    const a = await run({ ...schedule, seed: 7 }, 120, 20);
    const b = await run({ ...schedule, seed: 7 }, 120, 20);
    const c = await run({ ...schedule, seed: 8 }, 120, 20);
    expect(summary(a.outcomes)).toEqual(summary(b.outcomes));
    expect(summary(c.outcomes)).not.toEqual(summary(a.outcomes));
  });

  it('answers after exactly its constant latency on a VirtualClock, and not before', async () => {
    const clock = new VirtualClock();
    const dep = faultyDependency({ clock, latency: '50ms' });
    let done = false;
    const p = dep.call().then((r) => {
      done = true;
      return r;
    });
    await clock.advance(49);
    expect(done).toBe(false);
    expect(dep.inFlight).toBe(1);
    await clock.advance(1);
    expect(done).toBe(true);
    expect(await p).toEqual({ call: 1, latency: 50 });
    expect(dep.inFlight).toBe(0);
    expect(dep.succeeded).toBe(1);
  });

  it('answers a zero-latency call without any timer', async () => {
    const clock = new VirtualClock();
    const dep = faultyDependency({ clock });
    await expect(dep.call()).resolves.toEqual({ call: 1, latency: 0 });
    expect(clock.pending).toBe(0);
  });

  it('draws uniform latencies between min and max', async () => {
    const { outcomes } = await run({ latency: { min: 10, max: 30 }, seed: 3 }, 2000);
    const latencies = outcomes.map((o) => (o.ok ? o.latency : NaN));
    expect(Math.min(...latencies)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...latencies)).toBeLessThanOrEqual(30);
    const mean = latencies.reduce((s, x) => s + x, 0) / latencies.length;
    expect(mean).toBeGreaterThan(19);
    expect(mean).toBeLessThan(21);
  });

  it('draws log-normal latencies whose median and 99th percentile match p50 and p99', async () => {
    const { outcomes } = await run({ latency: { p50: 40, p99: 400 }, seed: 11 }, 5000);
    const sorted = outcomes.map((o) => (o.ok ? o.latency : NaN)).sort((a, b) => a - b);
    expect(quantile(sorted, 0.5)).toBeGreaterThan(36);
    expect(quantile(sorted, 0.5)).toBeLessThan(44);
    expect(quantile(sorted, 0.99)).toBeGreaterThan(320);
    expect(quantile(sorted, 0.99)).toBeLessThan(500);
    // A long tail: some calls are slower than p99.
    expect(sorted[sorted.length - 1]!).toBeGreaterThan(400);
  });

  it('fails about failureRate of the calls with a retryable 503 FaultError', async () => {
    const { outcomes, dep } = await run({ latency: 5, failureRate: 0.3, seed: 5 }, 2000);
    const failures = outcomes.filter((o) => !o.ok) as { error: unknown; at: number }[];
    expect(failures.length / 2000).toBeGreaterThan(0.26);
    expect(failures.length / 2000).toBeLessThan(0.34);
    expect(dep.failed).toBe(failures.length);
    const error = failures[0]!.error as FaultError;
    expect(error).toBeInstanceOf(FaultError);
    expect(error.status).toBe(503);
    expect(error.kind).toBe('failure');
    expect(isRetryableError(error)).toBe(true);
    // A failure arrives after the call's latency, like a slow 503.
    expect(failures[0]!.at).toBe(5);
  });

  it('fails every call that starts inside an outage, at once, and counts them', async () => {
    const clock = new VirtualClock();
    const dep = faultyDependency({
      clock,
      latency: 10,
      outages: [
        {
          from: '1s',
          to: '2s',
          error: (f: { call: number }) =>
            Object.assign(new Error('down'), { status: 502, n: f.call }),
        },
      ],
    });
    const results: string[] = [];
    for (let t = 0; t < 3000; t += 250) {
      dep.call().then(
        () => results.push(`${t}:ok`),
        (e: { status: number }) => results.push(`${t}:${e.status}@${clock.now()}`),
      );
      await clock.advance(250);
    }
    await clock.runAll();
    expect(results).toEqual([
      '0:ok',
      '250:ok',
      '500:ok',
      '750:ok',
      '1000:502@1000',
      '1250:502@1250',
      '1500:502@1500',
      '1750:502@1750',
      '2000:ok',
      '2250:ok',
      '2500:ok',
      '2750:ok',
    ]);
    expect(dep.callsDuring(dep.outages[0]!)).toBe(4);
    expect(dep.callsDuring({ from: 0, to: '1s' })).toBe(4);
    expect(dep.phaseAt(1200)).toBe('outage');
    expect(dep.phaseAt(2000)).toBe('normal');
  });

  it('multiplies latency during a slowdown and uses its failure rate', async () => {
    const clock = new VirtualClock();
    const dep = faultyDependency({
      clock,
      latency: 10,
      slowdowns: [{ from: 100, to: 200, factor: 10, failureRate: 1 }],
    });
    const normal = dep.call();
    await clock.advance(100);
    expect(dep.phaseAt()).toBe('slowdown');
    const slow = dep.call().catch((e: unknown) => e);
    await clock.advance(99);
    expect(dep.inFlight).toBe(1);
    await clock.advance(1);
    await expect(normal).resolves.toEqual({ call: 1, latency: 10 });
    const error = (await slow) as FaultError;
    expect(error.kind).toBe('brownout');
    expect(clock.now()).toBe(200);
  });

  it('leaves a hung call pending until its signal aborts, then rejects with the reason', async () => {
    const clock = new VirtualClock();
    const dep = faultyDependency({ clock, latency: 10, hangs: 1 });
    const controller = new AbortController();
    let settled = false;
    const p = dep.call({ signal: controller.signal }).finally(() => (settled = true));
    await clock.advance(3_600_000);
    await clock.runAll();
    expect(settled).toBe(false);
    expect(dep.hung).toBe(1);
    expect(dep.inFlight).toBe(1);
    const reason = new Error('gave up');
    controller.abort(reason);
    // Counted out at the abort itself, before any promise reaction runs.
    expect(dep.inFlight).toBe(0);
    await expect(p).rejects.toBe(reason);
    expect(dep.aborted).toBe(1);
  });

  it('turns an outage with hang: true into a black hole that only an abort ends', async () => {
    const clock = new VirtualClock();
    const dep = faultyDependency({ clock, outages: [{ from: 0, to: 1000, hang: true }] });
    const controller = new AbortController();
    const p = dep.call({ signal: controller.signal });
    await clock.advance(5000);
    expect(dep.inFlight).toBe(1);
    controller.abort(new Error('timeout'));
    await expect(p).rejects.toThrow('timeout');
    await expect(dep.call()).resolves.toBeDefined();
  });

  it('ends a slow call on abort and leaves no timer behind', async () => {
    const clock = new VirtualClock();
    const dep = faultyDependency({ clock, latency: 1000 });
    const controller = new AbortController();
    const p = dep.call({ signal: controller.signal });
    expect(clock.pending).toBe(1);
    await clock.advance(10);
    controller.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    expect(clock.pending).toBe(0);
    expect(dep.succeeded).toBe(0);
    expect(dep.aborted).toBe(1);
  });

  it('rejects at once a call whose signal already aborted', async () => {
    const dep = faultyDependency({ clock: new VirtualClock(), latency: 10 });
    const reason = new Error('already');
    await expect(dep.call({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(dep.calls).toBe(1);
    expect(dep.inFlight).toBe(0);
  });

  it('tracks calls in flight and the most at once', async () => {
    const clock = new VirtualClock();
    const dep = faultyDependency({ clock, latency: 100 });
    const calls = [dep.call(), dep.call(), dep.call()];
    await clock.advance(50);
    calls.push(dep.call());
    expect(dep.inFlight).toBe(4);
    await clock.advance(50);
    expect(dep.inFlight).toBe(1);
    await clock.runAll();
    await Promise.all(calls);
    expect(dep.maxInFlight).toBe(4);
    expect(dep.inFlight).toBe(0);
  });

  it('counts windows from its origin: creation time by default', async () => {
    const clock = new VirtualClock({ start: 10_000 });
    const dep = faultyDependency({ clock, outages: [{ from: 0, to: 100 }] });
    expect(dep.origin).toBe(10_000);
    await expect(dep.call()).rejects.toBeInstanceOf(FaultError);
    await clock.advance(100);
    await expect(dep.call()).resolves.toBeDefined();
  });

  it('returns what value() makes and throws what errors() makes', async () => {
    const clock = new VirtualClock();
    const dep = faultyDependency({
      clock,
      failureRate: 0.5,
      seed: 9,
      value: ({ call }) => `payment ${call}`,
      errors: (f) => Object.assign(new Error('nope'), { statusCode: 500, call: f.call }),
    });
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => dep.call()));
    const values = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    const errors = outcomes.flatMap((o) =>
      o.status === 'rejected' ? [o.reason as { statusCode: number }] : [],
    );
    expect(values.length).toBeGreaterThan(0);
    expect(errors.length).toBeGreaterThan(0);
    expect(values[0]).toMatch(/^payment \d+$/);
    expect(errors[0]!.statusCode).toBe(500);
  });

  it('runs on the system clock with a timer that keeps the process alive until answered or aborted', async () => {
    const dep = faultyDependency({ clock: systemClock, latency: 60_000 });
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const controller = new AbortController();
    const p = dep.call({ signal: controller.signal });
    const during = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    expect(during).toBe(before + 1);
    controller.abort(new Error('done'));
    await expect(p).rejects.toThrow('done');
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before);
    await expect(faultyDependency().call()).resolves.toEqual({ call: 1, latency: 0 });
  });

  it('can keep no history, for very long runs', async () => {
    const dep = faultyDependency({ clock: new VirtualClock(), history: false });
    await dep.call();
    expect(dep.calls).toBe(1);
    expect(() => dep.callsDuring({ from: 0, to: 10 })).toThrow(/history/);
  });

  it('rejects bad options with every problem and its path', () => {
    let error: unknown;
    try {
      faultyDependency({
        latency: { p50: 100, p99: 10 },
        failureRate: 2,
        hangs: -1,
        outages: [{ from: 50, to: 10 }],
        slowdowns: [{ from: 0, to: 10, factor: -1, oops: 1 } as never],
        bogus: true,
      } as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const paths = (error as ConfigError).problems.map((p) => p.path).sort();
    expect(paths).toEqual(
      [
        'faultyDependency.bogus',
        'faultyDependency.failureRate',
        'faultyDependency.hangs',
        'faultyDependency.latency.p99',
        'faultyDependency.outages[0].to',
        'faultyDependency.slowdowns[0].factor',
        'faultyDependency.slowdowns[0].oops',
      ].sort(),
    );
  });
});
