/**
 * "My checkout call survives a 10-minute payments outage."
 *
 * A test a user could copy: a simulated payments service (faultyDependency) goes down
 * for ten minutes on a virtual clock, and we check what our checkout did meanwhile —
 * served a fallback, kept its calls to payments to a trickle, and recovered when
 * payments came back. Fifteen minutes of traffic run in milliseconds.
 *
 * In your project, import from the package instead:
 *   import { dependency } from 'bulwark';
 *   import { VirtualClock, faultyDependency, seededRandom } from 'bulwark/testing';
 *
 * To replay a failing run, pass the seed its message printed: SEED=1234 npx vitest run <this file>
 */
import { describe, expect, it } from 'vitest';
import { CircuitOpenError, dependency } from '../../src/index.js';
import {
  faultyDependency,
  seededRandom,
  VirtualClock,
  type FaultyResponse,
} from '../../src/testing/index.js';

const MINUTE = 60_000;
const PENDING = { status: 'pending', note: 'payment will be confirmed by e-mail' } as const;

/** Our service's code under test: one checkout, guarded by a per-dependency policy set. */
function makeCheckout(clock: VirtualClock, seed: number) {
  const payments = faultyDependency({
    clock,
    seed,
    latency: { p50: 80, p99: 400 },
    failureRate: 0.01,
    outages: [{ from: '1m', to: '11m' }],
  });
  const policies = dependency('payments', {
    clock,
    budget: '2s',
    timeout: '800ms',
    // A seeded jitter source makes the whole run replayable from one number.
    retry: { maxAttempts: 3, backoff: { initial: 100, max: 1_000 }, random: seededRandom(seed) },
    circuitBreaker: { consecutiveFailures: 5, halfOpenAfter: '30s' },
    fallback: { value: PENDING },
  });
  // The fallback stands in for a payment result: say so in the result type.
  const checkout = () => policies.execute<FaultyResponse | typeof PENDING>(payments.call);
  return { payments, policies, checkout };
}

const seeds = process.env.SEED ? [Number(process.env.SEED)] : [1, 2, 3];

describe('checkout during a 10-minute payments outage', () => {
  for (const seed of seeds) {
    it(`serves the fallback, sends payments only a trickle of trial calls, and recovers (seed ${seed})`, async () => {
      const started = performance.now();
      const clock = new VirtualClock();
      const { payments, policies, checkout } = makeCheckout(clock, seed);
      const because = `seed ${seed} (replay: SEED=${seed})`;

      // One checkout every 2 s for 15 minutes; each settles before the next starts.
      const served: { at: number; fallback: boolean }[] = [];
      const trips: number[] = [];
      policies.breaker!.on('stateChange', ({ to }) => {
        if (to === 'open') trips.push(clock.now());
      });
      for (let at = 0; at < 15 * MINUTE; at += 2_000) {
        const result = checkout();
        await clock.advance(2_000);
        // Nothing ever throws: every failure became the fallback.
        const value = await result;
        served.push({ at, fallback: value === PENDING });
      }

      const during = served.filter((s) => s.at >= 1 * MINUTE && s.at < 11 * MINUTE);
      const before = served.filter((s) => s.at < 1 * MINUTE);
      const afterRecovery = served.filter((s) => s.at >= 11 * MINUTE + 30_000);

      // Before: real answers. During: the fallback, every time.
      const at = (list: typeof served) => list.map((s) => s.at);
      expect(at(before.filter((s) => s.fallback)), because).toEqual([]);
      expect(at(during.filter((s) => !s.fallback)), because).toEqual([]);
      expect(during).toHaveLength(300);

      // The breaker kept payments from being hammered: 300 checkouts × 3 attempts would
      // have been 900 calls; it let through the calls that tripped it, then one trial
      // per 30 s.
      const outage = payments.outages[0]!;
      expect(payments.callsDuring(outage), because).toBeLessThanOrEqual(5 + 2 * 10 + 1);
      for (let minute = 2; minute < 11; minute++) {
        const calls = payments.callsDuring({ from: minute * MINUTE, to: (minute + 1) * MINUTE });
        expect(calls, `${because}, minute ${minute}`).toBeLessThanOrEqual(2);
      }
      expect(trips[0], because).toBeLessThan(1 * MINUTE + 5_000);

      // After: the first trial once payments is back closes the breaker, and checkouts
      // are real again.
      expect(at(afterRecovery.filter((s) => s.fallback)), because).toEqual([]);
      expect(policies.breaker!.state).toBe('closed');

      // Fifteen minutes of virtual time in a few dozen ms of real time (the bound is loose
      // so that a loaded CI machine does not fail it).
      expect(performance.now() - started).toBeLessThan(2_000);
    });
  }

  it('fails fast with CircuitOpenError while open when there is no fallback', async () => {
    const clock = new VirtualClock();
    const payments = faultyDependency({ clock, outages: [{ from: 0, to: '10m' }] });
    const policies = dependency('payments', {
      clock,
      retry: { maxAttempts: 1 },
      circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: '30s' },
    });
    for (let i = 0; i < 2; i++) await policies.execute(payments.call).catch(() => {});
    const error = await policies.execute(payments.call).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect((error as CircuitOpenError).retryAfterMs).toBe(30_000);
    expect(payments.calls).toBe(2);
  });
});
