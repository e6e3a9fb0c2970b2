import { describe, expect, it } from 'vitest';
import {
  budget,
  bulkhead,
  circuitBreaker,
  pipeline,
  retry,
  timeout,
  TimeoutError,
} from '../../src/index.js';
import type { Clock } from '../../src/core/clock.js';
import { VirtualClock } from '../../src/testing/index.js';

/** A VirtualClock that counts its reads. */
function countingClock(): { clock: VirtualClock; reads: () => number } {
  const clock = new VirtualClock();
  let reads = 0;
  const now = clock.now.bind(clock);
  (clock as Clock).now = () => {
    reads++;
    return now();
  };
  return { clock, reads: () => reads };
}

describe('one clock reading passed down the steps that run at once', () => {
  it('budget, retry, a closed breaker and a free bulkhead hand the budget’s reading to the attempt timeout', async () => {
    const { clock, reads } = countingClock();
    const p = pipeline(
      budget(10_000, { clock }),
      retry(),
      circuitBreaker({ consecutiveFailures: 5 }),
      bulkhead({ maxConcurrent: 10 }),
      timeout(100),
    );
    // A pending call keeps the clock's one deadline timer armed (for 50), so the call
    // below arms nothing: every read counted is a step's.
    const pending = pipeline(timeout(50, { clock }))
      .execute(() => new Promise(() => {}))
      .catch((e: unknown) => e);
    const before = reads();
    let deadline = -1;
    await p.execute((ctx) => (deadline = ctx.deadline));
    expect(deadline).toBe(100);
    expect(reads() - before).toBe(1);
    await clock.advance(50);
    expect(await pending).toBeInstanceOf(TimeoutError);
  });

  it('a call that waited in the bulkhead queue reads the clock when it starts: its timeout runs from then', async () => {
    const clock = new VirtualClock();
    const bh = bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const p = pipeline(budget(10_000, { clock }), retry(), circuitBreaker(), bh, timeout(100));
    const first = p.execute(() => clock.sleep(50));
    const deadlines: number[] = [];
    const second = p.execute((ctx) => deadlines.push(ctx.deadline));
    await clock.advance(50);
    await Promise.all([first, second]);
    expect(deadlines).toEqual([150]);
  });
});
