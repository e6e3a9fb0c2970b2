import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock, type Clock } from '../../src/core/clock.js';
import {
  DeadlineTimers,
  deadlineTimersOf,
  type DeadlineEntry,
} from '../../src/core/deadline-timers.js';
import { VirtualClock } from '../../src/testing/virtual-clock.js';

/** An entry that records the clock reading of every time it is told its deadline passed. */
interface Probe extends DeadlineEntry {
  firedAt: number[];
}

function probe(clock: Clock, deadline: number, then?: () => void): Probe {
  const entry: Probe = {
    deadline,
    heapIndex: -1,
    firedAt: [],
    onDeadline() {
      entry.firedAt.push(clock.now());
      then?.();
    },
  };
  return entry;
}

describe('DeadlineTimers', () => {
  it('tells an entry once, when its deadline comes', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const entry = probe(clock, 100);
    timers.add(entry);
    expect(timers.size).toBe(1);
    await clock.advance(99);
    expect(entry.firedAt).toEqual([]);
    await clock.advance(1);
    expect(entry.firedAt).toEqual([100]);
    expect(timers.size).toBe(0);
    await clock.runAll();
    expect(entry.firedAt).toEqual([100]);
  });

  it('never tells an entry removed before its deadline, and disarms once empty', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const entry = probe(clock, 100);
    timers.add(entry);
    expect(clock.pending).toBe(1);
    timers.remove(entry);
    expect(timers.size).toBe(0);
    // On a non-system clock the idle timer is cleared at once: runAll() has nothing to jump to.
    expect(clock.pending).toBe(0);
    await clock.runAll();
    expect(clock.now()).toBe(0);
    expect(entry.firedAt).toEqual([]);
  });

  it('arms one clock timer for any number of entries, for the earliest deadline', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const late = probe(clock, 300);
    const early = probe(clock, 100);
    const middle = probe(clock, 200);
    timers.add(late);
    timers.add(early); // earlier: re-arms
    timers.add(middle); // later than the armed one: no new timer
    expect(clock.pending).toBe(1);
    await clock.advance(100);
    expect([early.firedAt, middle.firedAt, late.firedAt]).toEqual([[100], [], []]);
    expect(clock.pending).toBe(1);
    await clock.runAll();
    expect([middle.firedAt, late.firedAt]).toEqual([[200], [300]]);
    expect(clock.pending).toBe(0);
  });

  it('tells every entry that shares a deadline in the same tick', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const entries = [probe(clock, 50), probe(clock, 50), probe(clock, 50)];
    for (const e of entries) timers.add(e);
    await clock.advance(50);
    expect(entries.map((e) => e.firedAt)).toEqual([[50], [50], [50]]);
  });

  it('tells an entry whose deadline has already passed on the next timer turn', async () => {
    const clock = new VirtualClock({ start: 1_000 });
    const timers = new DeadlineTimers(clock);
    const overdue = probe(clock, 400);
    timers.add(overdue);
    expect(overdue.firedAt).toEqual([]); // never synchronously inside add()
    await clock.advance(0);
    expect(overdue.firedAt).toEqual([1_000]);
  });

  it('keeps the armed timer when an earlier entry leaves; it fires, finds nothing, re-arms', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const first = probe(clock, 100);
    const second = probe(clock, 250);
    timers.add(first);
    timers.add(second);
    timers.remove(first);
    expect(clock.pending).toBe(1);
    await clock.advance(100);
    expect(second.firedAt).toEqual([]);
    expect(clock.pending).toBe(1);
    await clock.advance(150);
    expect(second.firedAt).toEqual([250]);
  });

  it('skips an entry that an earlier entry’s onDeadline removed in the same tick', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const second = probe(clock, 10);
    const first = probe(clock, 10, () => timers.remove(second));
    timers.add(first);
    timers.add(second);
    await clock.advance(10);
    expect(first.firedAt).toEqual([10]);
    expect(second.firedAt).toEqual([]);
    expect(timers.size).toBe(0);
  });

  it('tells an entry added from onDeadline, already due, in the same tick', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const added = probe(clock, 5);
    timers.add(probe(clock, 10, () => timers.add(added)));
    await clock.advance(10);
    expect(added.firedAt).toEqual([10]);
  });

  describe('when an onDeadline throws', () => {
    const original = queueMicrotask;
    afterEach(() => {
      globalThis.queueMicrotask = original;
    });

    it('tells the other due entries and reports the error in a microtask', async () => {
      const reported: unknown[] = [];
      // Catch the rethrow that would otherwise surface as an uncaught exception.
      globalThis.queueMicrotask = (cb) =>
        original(() => {
          try {
            cb();
          } catch (error) {
            reported.push(error);
          }
        });
      const clock = new VirtualClock();
      const timers = new DeadlineTimers(clock);
      const boom = new Error('listener failed');
      const throwing = probe(clock, 10, () => {
        throw boom;
      });
      const after = probe(clock, 10);
      const later = probe(clock, 20);
      timers.add(throwing);
      timers.add(after);
      timers.add(later);
      await clock.advance(10);
      expect(after.firedAt).toEqual([10]);
      expect(reported).toEqual([boom]);
      await clock.advance(10);
      expect(later.firedAt).toEqual([20]);
      expect(timers.size).toBe(0);
    });
  });

  it('on the system clock, keeps the process alive only while an entry is pending', async () => {
    // Node lists a timer among the active resources only while it is referenced.
    const refTimers = () =>
      process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
    const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
    const before = refTimers();
    const timers = new DeadlineTimers(systemClock);
    const far = systemClock.now() + 1_000_000; // never reached while this test runs
    const first = probe(systemClock, far);
    timers.add(first);
    expect(refTimers()).toBe(before + 1);
    timers.remove(first);
    // Left armed (clearing it per call would cost the setTimeout we avoid), and unref'd on
    // the loop's next turn: a call made right after this one finds it still referenced.
    expect(refTimers()).toBe(before + 1);
    await nextTurn();
    expect(refTimers()).toBe(before);
    const second = probe(systemClock, far + 1);
    timers.add(second); // later than the armed deadline: the same timer is referenced again
    expect(refTimers()).toBe(before + 1);
    timers.remove(second);
    const third = probe(systemClock, far + 2);
    timers.add(third); // in the same turn: still referenced, and no longer idle
    await nextTurn();
    expect(refTimers()).toBe(before + 1);
    timers.remove(third);
    await nextTurn();
    expect(refTimers()).toBe(before);
  });

  it('lets an idle process exit right after its last call settles', () => {
    // A child process makes calls with a 60 s timeout one after another, then has nothing
    // left to do: it must exit at once, not when the armed timer would fire.
    const script = [
      "import { timeout } from './src/index.ts';",
      'const t = timeout(60_000);',
      'for (let i = 0; i < 100; i++) await t.execute(async () => i);',
      'process.stdout.write("done");',
    ].join('\n');
    const started = Date.now();
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: process.cwd(),
        timeout: 20_000,
      },
    ).toString();
    expect(out).toBe('done');
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});

describe('deadlineTimersOf', () => {
  it('gives one structure per clock', () => {
    const a = new VirtualClock();
    const b = new VirtualClock();
    expect(deadlineTimersOf(a)).toBe(deadlineTimersOf(a));
    expect(deadlineTimersOf(a)).not.toBe(deadlineTimersOf(b));
  });
});

// A step against the structure: add an entry due `offset` ms from now (negative: overdue),
// remove the live entry at position `pick` (modulo how many are live), or let time pass.
// `fixed`: the entry is added as "now + offset" for a duration shared by others (a FIFO list).
type Step =
  | { op: 'add'; offset: number; fixed: boolean }
  | { op: 'remove'; pick: number }
  | { op: 'advance'; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.constantFrom(-20, 0, 1, 50, 120, 300, 7, 90), fc.boolean())
      .map(([offset, fixed]) => ({ op: 'add', offset, fixed }) as const),
  },
  { weight: 2, arbitrary: fc.nat().map((pick) => ({ op: 'remove', pick }) as const) },
  {
    weight: 3,
    arbitrary: fc.integer({ min: 0, max: 120 }).map((ms) => ({ op: 'advance', ms }) as const),
  },
);

describe('DeadlineTimers properties', () => {
  it('every entry is told exactly once, at max(deadline, added at); removed entries never; one clock timer at a time', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 60, size: 'max' }), async (steps) => {
        const clock = new VirtualClock();
        const timers = new DeadlineTimers(clock);
        const kept: { entry: Probe; addedAt: number }[] = [];
        const removed: Probe[] = [];
        let live: Probe[] = [];
        for (const s of steps) {
          if (s.op === 'add') {
            const entry = probe(clock, clock.now() + s.offset);
            timers.add(entry, s.fixed && s.offset >= 0 ? s.offset : undefined);
            live.push(entry);
            kept.push({ entry, addedAt: clock.now() });
          } else if (s.op === 'remove') {
            live = live.filter((e) => e.firedAt.length === 0);
            if (live.length === 0) continue;
            const [gone] = live.splice(s.pick % live.length, 1);
            timers.remove(gone!);
            removed.push(gone!);
          } else {
            await clock.advance(s.ms);
          }
          expect(clock.pending).toBeLessThanOrEqual(1);
        }
        await clock.runAll();
        expect(timers.size).toBe(0);
        expect(clock.pending).toBe(0);
        for (const gone of removed) expect(gone.firedAt).toEqual([]);
        for (const { entry, addedAt } of kept) {
          if (removed.includes(entry)) continue;
          expect(entry.firedAt).toEqual([Math.max(entry.deadline, addedAt)]);
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('DeadlineTimers fixed-duration lists', () => {
  it('keeps entries of one duration in an O(1) FIFO list and fires them in arrival order', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const entries = Array.from({ length: 5 }, () => {
      const e = probe(clock, clock.now() + 100);
      timers.add(e, 100);
      return e;
    });
    expect(timers.listed).toBe(5);
    for (const e of entries) expect(e.heapIndex).toBeLessThanOrEqual(-2);
    timers.remove(entries[2]!);
    expect(entries[2]!.heapIndex).toBe(-1);
    expect(timers.size).toBe(4);
    await clock.advance(100);
    expect(entries.map((e) => e.firedAt.length)).toEqual([1, 1, 0, 1, 1]);
    expect(timers.size).toBe(0);
  });

  it('sends an entry that would break its list’s order to the heap, and still fires it on time', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const late = probe(clock, 200);
    timers.add(late, 100); // armed late: its "now + 100" was read at 100
    const early = probe(clock, 150);
    timers.add(early, 100); // earlier than the tail: out of order
    expect(timers.listed).toBe(1);
    expect(early.heapIndex).toBeGreaterThanOrEqual(0);
    await clock.runAll();
    expect(early.firedAt).toEqual([150]);
    expect(late.firedAt).toEqual([200]);
  });

  it('keeps 10,000 entries of one duration out of the heap, whatever order they leave in', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const entries = Array.from({ length: 10_000 }, (_, i) => probe(clock, 1000 + (i >> 4)));
    for (const e of entries) timers.add(e, 1000);
    expect(timers.listed).toBe(10_000); // no heap entry: insert and remove are O(1) unlinks
    for (let i = 0; i < entries.length; i += 2) timers.remove(entries[i]!);
    expect(timers.listed).toBe(5_000);
    await clock.runAll();
    expect(entries.filter((e) => e.firedAt.length === 1)).toHaveLength(5_000);
    expect(entries.every((e, i) => e.firedAt.length === (i % 2 === 0 ? 0 : 1))).toBe(true);
    expect(timers.size).toBe(0);
  });
});
