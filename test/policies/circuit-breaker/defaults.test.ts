import { describe, expect, it } from 'vitest';
import { CircuitOpenError } from '../../../src/index.js';
import { circuitBreaker } from '../../../src/policies/circuit-breaker/circuit-breaker.js';
import { DEFAULT_RULE } from '../../../src/policies/circuit-breaker/default-trip-rule.js';
import { openDuration } from '../../../src/policies/circuit-breaker/open-duration.js';
import { DEFAULT_OPEN_DURATION } from '../../../src/policies/circuit-breaker/options.js';
import { SlowStart } from '../../../src/policies/circuit-breaker/slow-start.js';
import { VirtualClock, seededRandom } from '../../../src/testing/index.js';

const boom = new Error('boom');

/** Sends `rate` calls/s for `seconds`, each failing when `fails()` says so; returns when it opened. */
async function drive(
  rate: number,
  seconds: number,
  fails: () => boolean,
): Promise<{ openedAt: number | undefined; calls: number; opens: number }> {
  const clock = new VirtualClock();
  const breaker = circuitBreaker({ clock });
  let openedAt: number | undefined;
  let opens = 0;
  breaker.on('stateChange', ({ to }) => {
    if (to === 'open') {
      opens++;
      openedAt ??= clock.now();
    }
  });
  let calls = 0;
  const step = 1000 / rate;
  for (let i = 0; i < rate * seconds; i++) {
    await breaker
      .execute(() => {
        calls++;
        if (fails()) throw boom;
        return 'ok';
      })
      .catch(() => undefined);
    await clock.advance(step);
  }
  return { openedAt, calls, opens };
}

describe('the default trip rule', () => {
  it('does not open under 30 % random errors at 100 calls/s (a minute of brownout)', async () => {
    const random = seededRandom(42);
    const { opens } = await drive(100, 60, () => random() < 0.3);
    expect(opens).toBe(0);
  });

  it('opens within a second of an outage at 100 calls/s, after healthy traffic', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock });
    let down = false;
    let openedAt: number | undefined;
    breaker.on('stateChange', ({ to }) => {
      if (to === 'open') openedAt ??= clock.now();
    });
    for (let i = 0; i < 1000; i++) {
      if (i === 500) down = true;
      await breaker
        .execute(() => {
          if (down) throw boom;
          return 'ok';
        })
        .catch(() => undefined);
      await clock.advance(10);
      if (openedAt !== undefined) break;
    }
    expect(openedAt).toBeDefined();
    expect(openedAt! - 5000).toBeLessThanOrEqual(1000);
    // 10 failures in a row at this rate: a tenth of a second.
    expect(openedAt! - 5000).toBeLessThanOrEqual(DEFAULT_RULE.consecutive * 10);
  });

  it('opens after a few failures at low traffic (1 call/s)', async () => {
    const { openedAt } = await drive(1, 10, () => true);
    expect(openedAt).toBe((DEFAULT_RULE.lowTrafficConsecutive - 1) * 1000);
  });

  it('opens when half the window fails even without a run of failures', async () => {
    let i = 0;
    // fail, fail, ok, fail, fail, ok …: 67 % failures, never more than 2 in a row.
    const { openedAt } = await drive(100, 5, () => i++ % 3 !== 2);
    expect(openedAt).toBeDefined();
  });

  /**
   * Sends 100 calls/s: healthy for 5 s, down from 5 s until the breaker has opened and
   * closed again (its trial succeeds once the dependency is back at 6 s), then healthy
   * until `downAgainAt`, then down. Returns how many calls the second fault cost before
   * the breaker reopened.
   */
  async function reopenCost(downAgainAt: number): Promise<number> {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, slowStart: false });
    const down = (t: number) => (t >= 5000 && t < 6000) || t >= downAgainAt;
    let failedSinceDown = 0;
    let reopenedAfter: number | undefined;
    let closed = false;
    breaker.on('stateChange', ({ to }) => {
      if (to === 'closed') closed = true;
      else if (to === 'open' && closed) reopenedAfter ??= failedSinceDown;
    });
    for (let t = 0; t < downAgainAt + 2000 && reopenedAfter === undefined; t += 10) {
      await breaker
        .execute(() => {
          if (!down(clock.now())) return 'ok';
          if (clock.now() >= downAgainAt) failedSinceDown++;
          throw boom;
        })
        .catch(() => undefined);
      await clock.advance(10);
    }
    expect(reopenedAfter).toBeDefined();
    return reopenedAfter!;
  }

  it('reopens after 3 failures in a row within 10 s of recovering (probation)', async () => {
    expect(await reopenCost(8000)).toBe(DEFAULT_RULE.probationConsecutive);
  });

  it('needs the full run again once the probation is over', async () => {
    // Recovered at about 6.3 s; 12 s later the window is full of healthy traffic.
    expect(await reopenCost(18_500)).toBe(DEFAULT_RULE.consecutive);
  });

  it('puts no probation on a breaker closed by hand', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock });
    for (let i = 0; i < 200; i++) {
      await breaker.execute(() => 'ok');
      await clock.advance(10);
    }
    const isolation = breaker.isolate();
    isolation.release();
    for (let i = 0; i < DEFAULT_RULE.probationConsecutive; i++)
      await breaker.execute(() => Promise.reject(boom)).catch(() => undefined);
    expect(breaker.state).toBe('closed');
  });

  it('starts with a short open period that grows to tens of seconds', () => {
    const { initial, multiplier, max } = DEFAULT_OPEN_DURATION;
    const durations = [1, 2, 3, 4, 20].map((trip) => openDuration(initial, multiplier, max, trip));
    expect(durations[0]).toBeLessThanOrEqual(300);
    expect(durations[1]).toBeGreaterThan(durations[0]!);
    expect(durations[4]).toBe(30_000);
  });

  it('probes again within a few hundred ms after the first trip, by default', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ consecutiveFailures: 1, clock });
    await breaker.execute(() => Promise.reject(boom)).catch(() => undefined);
    expect(breaker.stats().retryAfterMs).toBe(DEFAULT_OPEN_DURATION.initial);
  });
});

describe('slow start', () => {
  it('admits a share growing from 10 % to all calls over the window', () => {
    const s = new SlowStart(1000);
    s.begin(0, 0);
    expect(s.share(0)).toBeCloseTo(0.1);
    expect(s.share(500)).toBeCloseTo(0.55);
    expect(s.share(1000)).toBe(1);
    let admitted = 0;
    for (let i = 0; i < 100; i++) {
      s.offer();
      if (s.admit(0)) admitted++;
    }
    expect(admitted).toBe(10);
    expect(s.nextAdmissionAt()).toBeGreaterThan(0);
  });

  it('holds back calls over the share right after closing and fails those that cannot wait', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 100, clock });
    await breaker.execute(() => Promise.reject(boom)).catch(() => undefined);
    await clock.advance(100);
    await breaker.execute(() => 'trial'); // closes; the ramp starts at 10 %
    expect(breaker.rampingUp).toBe(true);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, () => breaker.execute(() => 'ok')),
    );
    const refused = outcomes.filter(
      (o) => o.status === 'rejected' && o.reason instanceof CircuitOpenError,
    ).length;
    expect(refused).toBeGreaterThanOrEqual(17);
    await clock.advance(2000);
    expect(breaker.rampingUp).toBe(false);
    await expect(breaker.execute(() => 'ok')).resolves.toBe('ok');
  });

  it('counts released waiters against the ramp and lets the rest through as it grows', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      consecutiveFailures: 1,
      halfOpenAfter: 100,
      whileOpen: { wait: true },
      slowStart: { window: 1000 },
      clock,
    });
    await breaker.execute(() => Promise.reject(boom)).catch(() => undefined);
    let running = 0;
    let peak = 0;
    const work = async () => {
      running++;
      peak = Math.max(peak, running);
      await clock.sleep(1);
      running--;
      return 'ok';
    };
    const all = Array.from({ length: 50 }, () => breaker.execute(work, { budget: 5000 }));
    const settled: number[] = [];
    all.forEach((p, i) => void p.then(() => settled.push(i)));
    await clock.advance(101); // the first in line is the trial; it succeeds and closes
    expect(settled.length).toBeLessThanOrEqual(Math.ceil(0.1 * 50) + 1);
    await clock.advance(1010); // the ramp is over by 1101; each call takes 1 ms
    expect(settled.length).toBe(50);
    expect(peak).toBeLessThan(50);
  });

  it('is off with slowStart: false', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      consecutiveFailures: 1,
      halfOpenAfter: 100,
      slowStart: false,
      clock,
    });
    await breaker.execute(() => Promise.reject(boom)).catch(() => undefined);
    await clock.advance(100);
    await breaker.execute(() => 'trial');
    expect(breaker.rampingUp).toBe(false);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, () => breaker.execute(() => 'ok')),
    );
    expect(outcomes.every((o) => o.status === 'fulfilled')).toBe(true);
  });
});
