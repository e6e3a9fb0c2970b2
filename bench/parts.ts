/**
 * The building blocks every policy pays for, measured like the cases (interleaved, as a
 * ratio to the bare call): what one clock read, one reaction, one promise layer or one
 * error costs on this machine. Where a target is out of reach, these show why.
 */
import { systemClock } from '../src/core/clock.js';
import { CallContext } from '../src/core/context.js';
import { deadlineTimersOf } from '../src/core/deadline-timers.js';
import { rejectAfterAttach, stacklessErrorOf } from '../src/core/fail-fast.js';
import { CircuitOpenError } from '../src/policies/circuit-breaker/errors.js';
import { bareCall, type BenchCase } from './harness.js';

const noop = (): void => {};
const identity = <T>(v: T): T => v;
const Stackless = stacklessErrorOf(CircuitOpenError);
let sink: unknown;

function withoutStack(): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new CircuitOpenError('open', 1000, 'bench');
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * A deadline read and a promise that settles with the call or could be rejected at the
 * deadline: what a timeout must do before any bookkeeping (a list entry, a context).
 */
export function guarded(): Promise<unknown> {
  const deadline = systemClock.now() + 1000;
  return new Promise((resolve, reject) => {
    sink = deadline;
    bareCall().then(
      (v) => resolve(v),
      (e: unknown) => reject(e),
    );
  });
}

/** A pending call in the hand-rolled deadline list below. */
interface Listed {
  deadline: number;
  prev: Listed | undefined;
  next: Listed | undefined;
  reject: (reason: unknown) => void;
}

/**
 * The least a shared deadline timer can do per call, by hand: append to one FIFO list
 * (fixed timeouts expire in arrival order), unlink on settle, and ref its one timer while
 * anything is pending (so a hung call still times out instead of the process exiting),
 * unref'ing it a loop turn after the last call settles (as DeadlineTimers does) so that
 * calls one after another do not toggle it per call.
 */
class HandRolledDeadlines {
  private head: Listed | undefined = undefined;
  private tail: Listed | undefined = undefined;
  private count = 0;
  private refed = false;
  private unrefScheduled = false;
  private readonly timer = setTimeout(() => this.fire(), 1_000_000).unref();
  private readonly unrefIfIdle = (): void => {
    this.unrefScheduled = false;
    if (this.count === 0 && this.refed) {
      this.timer.unref();
      this.refed = false;
    }
  };

  add(e: Listed): void {
    e.prev = this.tail;
    if (this.tail === undefined) this.head = e;
    else this.tail.next = e;
    this.tail = e;
    if (++this.count === 1 && !this.refed) {
      this.timer.ref();
      this.refed = true;
    }
  }

  remove(e: Listed): void {
    if (e.prev === undefined) this.head = e.next;
    else e.prev.next = e.next;
    if (e.next === undefined) this.tail = e.prev;
    else e.next.prev = e.prev;
    if (--this.count === 0 && !this.unrefScheduled) {
      this.unrefScheduled = true;
      setImmediate(this.unrefIfIdle);
    }
  }

  private fire(): void {
    const now = systemClock.now();
    while (this.head !== undefined && this.head.deadline <= now) {
      const e = this.head;
      this.remove(e);
      e.reject(new Error('timeout'));
    }
  }
}
const handRolled = new HandRolledDeadlines();

/**
 * A guard whose deadline waits in a shared list with one ref'd timer: what a timeout that
 * rejects hung work, sets no timer per call and keeps the process alive while a call is
 * pending must do, with no context, options or policy object.
 */
export function guardedListed(): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const e: Listed = {
      deadline: systemClock.now() + 1000,
      prev: undefined,
      next: undefined,
      reject,
    };
    handRolled.add(e);
    bareCall().then(
      (v) => {
        handRolled.remove(e);
        resolve(v);
      },
      (err: unknown) => {
        handRolled.remove(e);
        reject(err);
      },
    );
  });
}

const timers = deadlineTimersOf(systemClock);

/**
 * The same guard written by hand around bulwark's own call context and deadline timers:
 * against `guardedListed` it shows what the context costs, and against `timeout` what
 * bulwark's guard and steps cost on top of it.
 */
export function guardedContext(): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const ctx = CallContext.root(systemClock, systemClock.now() + 1000);
    timers.add(ctx, 1000);
    bareCall().then(
      (v) => {
        timers.remove(ctx);
        resolve(v);
      },
      (err: unknown) => {
        timers.remove(ctx);
        reject(err);
      },
    );
  });
}

export const cases: BenchCase[] = [
  {
    group: 'building blocks',
    name: 'bare call + one clock read',
    run: () => ((sink = systemClock.now()), bareCall()),
  },
  {
    group: 'building blocks',
    name: 'bare call + one .then reaction',
    run: () => bareCall().then(identity),
  },
  {
    group: 'building blocks',
    name: 'bare call + one await layer',
    run: async () => await bareCall(),
  },
  {
    group: 'building blocks',
    name: 'bare call wrapped in new Promise + 2 reactions (a guard)',
    run: () =>
      new Promise((resolve, reject) => {
        bareCall().then(
          (v) => resolve(v),
          (e: unknown) => reject(e),
        );
      }),
  },
  {
    group: 'building blocks',
    name: 'bare call + one clock read + a guard (the least a timeout that rejects hung work pays)',
    run: guarded,
  },
  {
    group: 'building blocks',
    name: "clock read + guard + an entry in a shared deadline list whose timer is ref'd while calls are pending (the least a timeout as documented pays)",
    run: guardedListed,
  },
  {
    group: 'building blocks',
    name: "the same guard written by hand around bulwark's call context and deadline timers",
    run: guardedContext,
  },
  {
    group: 'building blocks',
    name: 'new CircuitOpenError (stack trace limit 0)',
    run: () => ((sink = withoutStack()), bareCall()),
  },
  {
    group: 'building blocks',
    name: 'stackless CircuitOpenError (no Error constructor)',
    run: () => ((sink = new Stackless('bench: circuit is open')), bareCall()),
  },
  {
    group: 'building blocks',
    name: 'Promise.reject, handler attached after',
    run: () => Promise.reject(sink).catch(noop),
  },
  {
    group: 'building blocks',
    name: 'a throw inside a reaction, handler attached before',
    run: () =>
      Promise.resolve()
        .then(() => {
          throw sink;
        })
        .catch(noop),
  },
  {
    group: 'building blocks',
    name: 'rejectAfterAttach (a rejecting thenable, adopted after the handler is attached)',
    run: () => rejectAfterAttach(sink).catch(noop),
  },
];
