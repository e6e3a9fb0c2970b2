import { systemClock, type Clock, type TimerHandle, setTimerRef } from './clock.js';
import { IndexedHeap } from './heap.js';

/** Something with a deadline that wants to be told when it passes. */
export interface DeadlineEntry {
  deadline: number;
  heapIndex: number;
  onDeadline(): void;
}

/**
 * All deadlines of one clock in one heap, with a single timer armed for the earliest.
 * A per-call setTimeout costs about 1 µs and a timer object; this costs a heap insert
 * and remove. A call that settles early leaves the armed timer in place: when it fires
 * it finds nothing due and re-arms for the new earliest deadline.
 */
export class DeadlineTimers {
  private readonly heap = new IndexedHeap<DeadlineEntry>(byDeadline);
  private handle: TimerHandle | undefined;
  private armedAt = Infinity;
  private readonly fire = (): void => this.onTimer();

  /** On the system clock an idle timer is left armed (unref'd) rather than cleared per call. */
  private readonly lazyDisarm: boolean;

  constructor(private readonly clock: Clock) {
    this.lazyDisarm = clock === systemClock;
  }

  get size(): number {
    return this.heap.size;
  }

  // While a call with a deadline is pending the timer keeps the process alive (that call
  // will settle at its deadline and somebody awaits it); once nothing is pending it is
  // unref'd, so an idle process exits.
  add(entry: DeadlineEntry): void {
    this.heap.push(entry);
    if (entry.deadline < this.armedAt) this.arm(entry.deadline);
    else if (this.heap.size === 1) setTimerRef(this.handle, true);
  }

  remove(entry: DeadlineEntry): void {
    // The armed timer stays: clearing and re-arming it per call would cost the very
    // setTimeout we avoid. It is unref'd, fires once more, finds nothing, and disarms.
    this.heap.remove(entry);
    if (this.heap.size > 0 || this.handle === undefined) return;
    if (this.lazyDisarm) setTimerRef(this.handle, false);
    else {
      // Other clocks (a VirtualClock) disarm at once, so runAll() never jumps to a stale deadline.
      this.clock.clearTimeout(this.handle);
      this.handle = undefined;
      this.armedAt = Infinity;
    }
  }

  private arm(at: number): void {
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
    this.armedAt = at;
    this.handle = this.clock.setTimeout(this.fire, Math.max(0, at - this.clock.now()));
    setTimerRef(this.handle, this.heap.size > 0);
  }

  private onTimer(): void {
    this.handle = undefined;
    this.armedAt = Infinity;
    const now = this.clock.now();
    for (;;) {
      const top = this.heap.peek();
      if (top === undefined) return;
      if (top.deadline > now) {
        this.arm(top.deadline);
        return;
      }
      this.heap.pop();
      try {
        top.onDeadline();
      } catch (error) {
        // A user abort listener threw; report it without corrupting the timer structure.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

function byDeadline(a: DeadlineEntry, b: DeadlineEntry): boolean {
  return a.deadline < b.deadline;
}

// Module-local symbol (not Symbol.for): each copy of the library keeps its own structure.
const kTimers = Symbol('bulwark.deadlineTimers');

export function deadlineTimersOf(clock: Clock): DeadlineTimers {
  const holder = clock as Clock & { [kTimers]?: DeadlineTimers };
  return (holder[kTimers] ??= new DeadlineTimers(clock));
}
