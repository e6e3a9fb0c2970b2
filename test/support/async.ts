import type fc from 'fast-check';
import { afterEach, beforeEach } from 'vitest';
import type { VirtualClock } from '../../src/testing/index.js';

/** Lets queued promise callbacks (and what they queue) run. */
export const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Collects unhandled rejections during each test of the file: `unhandled()` returns
 * those seen since the test began.
 */
export function collectUnhandledRejections(): () => unknown[] {
  let seen: unknown[] = [];
  const onUnhandled = (reason: unknown) => seen.push(reason);
  beforeEach(() => {
    seen = [];
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
  });
  return () => seen;
}

/**
 * Releases scheduled tasks one at a time; after each, lets promise callbacks settle and
 * moves virtual time by `stepMs` for every tick the released tasks asked for. Once
 * nothing is scheduled, fires the remaining timers (queue timeouts, deadlines), which may
 * schedule more. Throws if it does not settle.
 */
export async function drive(
  s: fc.Scheduler,
  clock: VirtualClock,
  ticks: { due: number },
  stepMs = 10,
): Promise<void> {
  for (let guard = 0; guard < 10_000; guard++) {
    if (s.count() > 0) {
      await s.waitOne();
      await flush();
      while (ticks.due > 0) {
        ticks.due--;
        await clock.advance(stepMs);
      }
    } else if (clock.pending > 0) {
      await clock.runAll();
    } else {
      await flush();
      if (s.count() === 0 && clock.pending === 0) return;
    }
  }
  throw new Error('drive: did not settle');
}

/**
 * A call's ending in a form `toEqual` compares across runs: the value or the error's
 * message, the timeout scope if it timed out, and the virtual time it settled at.
 */
export function endingOf<T>(
  call: Promise<T>,
  clock: VirtualClock,
): Promise<{ v?: T; e?: string; scope?: string; at: number }> {
  return call.then(
    (v) => ({ v, at: clock.now() }),
    (e: unknown) => ({
      e: (e as Error).message,
      scope: (e as { scope?: string }).scope,
      at: clock.now(),
    }),
  );
}
