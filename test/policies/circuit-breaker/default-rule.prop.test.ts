import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { circuitBreaker } from '../../../src/policies/circuit-breaker/circuit-breaker.js';
import { DEFAULT_RULE } from '../../../src/policies/circuit-breaker/default-trip-rule.js';
import { VirtualClock } from '../../../src/testing/index.js';

const boom = new Error('boom');

/** A breaker with the default rule that has tripped once and just closed again, at `recoveredAt`. */
async function recoveredBreaker() {
  const clock = new VirtualClock();
  const breaker = circuitBreaker({ clock, slowStart: false });
  for (let i = 0; i < 200; i++) {
    await breaker.execute(() => 'ok');
    await clock.advance(10);
  }
  while (breaker.state === 'closed')
    await breaker.execute(() => Promise.reject(boom)).catch(() => 0);
  await clock.advance(breaker.stats().retryAfterMs);
  await breaker.execute(() => 'trial');
  expect(breaker.state).toBe('closed');
  return { clock, breaker, recoveredAt: clock.now() };
}

/** The run of failures the default rule needs at `sinceRecovery` ms with `calls` in its window. */
function runNeeded(sinceRecovery: number, calls: number): number {
  if (sinceRecovery < DEFAULT_RULE.probationMs) return DEFAULT_RULE.probationConsecutive;
  return calls < DEFAULT_RULE.lowTrafficCalls
    ? DEFAULT_RULE.lowTrafficConsecutive
    : DEFAULT_RULE.consecutive;
}

describe('the default trip rule after a recovery (property)', () => {
  it('opens exactly when the run of failures reaches what probation, traffic or the rate rule asks', async () => {
    const step = fc.record({ fail: fc.boolean(), gap: fc.integer({ min: 0, max: 300 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 120 }), async (steps) => {
        const { clock, breaker, recoveredAt } = await recoveredBreaker();
        for (const { fail, gap } of steps) {
          await clock.advance(gap);
          const at = clock.now() - recoveredAt;
          await breaker.execute(() => (fail ? Promise.reject(boom) : 'ok')).catch(() => 0);
          const s = breaker.stats();
          const needed = runNeeded(at, s.calls);
          const rateTrips = s.calls >= DEFAULT_RULE.minimumCalls && s.failureRate >= 0.5;
          if (s.state === 'open') {
            // It opened on this outcome: by the run it needed, or by the failure rate.
            expect(fail).toBe(true);
            expect(s.consecutiveFailures >= needed || rateTrips).toBe(true);
            return;
          }
          expect(s.consecutiveFailures).toBeLessThan(needed);
          expect(rateTrips).toBe(false);
        }
      }),
      { numRuns: 150 },
    );
  });
});
