import { systemClock, type Clock, type TimerHandle, setTimerRef } from './clock.js';
import { IndexedHeap } from './heap.js';

/** Something with a deadline that wants to be told when it passes. */
export interface DeadlineEntry {
  deadline: number;
  /**
   * Where the entry waits: ≥ 0 its index in the heap, -1 nowhere, ≤ -2 in the
   * fixed-duration list number `-2 - heapIndex`.
   */
  heapIndex: number;
  /** Neighbours in a fixed-duration list; owned by DeadlineTimers. */
  dlPrev?: DeadlineEntry | undefined;
  dlNext?: DeadlineEntry | undefined;
  onDeadline(): void;
}

/** Entries that all wait the same duration: arrival order is deadline order. */
interface FixedList {
  readonly ms: number;
  head: DeadlineEntry | undefined;
  tail: DeadlineEntry | undefined;
}

// A handful of distinct timeouts per process is the norm; past this many, the heap takes the rest.
const MAX_LISTS = 32;

/**
 * All deadlines of one clock, with a single timer armed for the earliest.
 * A per-call setTimeout costs about 1 µs and a timer object; this costs a list append and
 * unlink. Deadlines of a fixed duration (one `timeout()`, one `budget()`) expire in
 * arrival order, so each duration keeps a FIFO list: insert and remove are O(1). Other
 * deadlines (absolute, inherited, or out of order) go to a heap.
 * A call that settles early leaves the armed timer in place: when it fires it finds
 * nothing due and re-arms for the new earliest deadline.
 */
export class DeadlineTimers {
  private readonly heap = new IndexedHeap<DeadlineEntry>(byDeadline);
  private readonly lists: FixedList[] = [];
  private readonly listOf = new Map<number, number>();
  private lastMs = NaN;
  private lastIndex = 0;
  private count = 0;
  private handle: TimerHandle | undefined;
  private armedAt = Infinity;
  private readonly fire = (): void => this.onTimer();
  /** Whether `handle` keeps the process alive now. */
  private refed = false;
  /** An unref of the idle timer waits for the loop's next turn (see remove). */
  private unrefScheduled = false;
  private readonly unrefIfIdle = (): void => {
    this.unrefScheduled = false;
    if (this.count === 0 && this.refed) this.setRef(false);
  };

  /** On the system clock an idle timer is left armed (unref'd) rather than cleared per call. */
  private readonly lazyDisarm: boolean;

  constructor(private readonly clock: Clock) {
    this.lazyDisarm = clock === systemClock;
  }

  get size(): number {
    return this.count;
  }

  /** Entries waiting in the fixed-duration lists (the rest are in the heap); for tests. */
  get listed(): number {
    return this.count - this.heap.size;
  }

  // While a call with a deadline is pending the timer keeps the process alive (that call
  // will settle at its deadline and somebody awaits it); once nothing is pending it is
  // unref'd, so an idle process exits.
  /**
   * `fixedMs`: the entry's deadline is "now + fixedMs" for a duration shared by many
   * entries; it then joins that duration's FIFO list when it keeps the list in order.
   */
  add(entry: DeadlineEntry, fixedMs?: number): void {
    if (fixedMs === undefined || !this.append(entry, fixedMs)) this.heap.push(entry);
    this.count++;
    if (entry.deadline < this.armedAt) this.arm(entry.deadline);
    else if (!this.refed && this.handle !== undefined) this.setRef(true);
  }

  remove(entry: DeadlineEntry): void {
    const i = entry.heapIndex;
    if (i >= 0) {
      this.heap.remove(entry);
      if (entry.heapIndex >= 0) return; // not this heap's entry
    } else if (i <= -2) {
      this.unlink(entry, this.lists[-2 - i]!);
    } else return;
    // The armed timer stays: clearing and re-arming it per call would cost the very
    // setTimeout we avoid. It is unref'd, fires once more, finds nothing, and disarms.
    if (--this.count > 0 || this.handle === undefined) return;
    if (this.lazyDisarm) {
      // Unref'd on the loop's next turn, not now: calls one after another in the same turn
      // (each awaiting the last) would otherwise ref and unref the timer per call, a native
      // call each time. Held a turn longer, an idle process still exits.
      if (!this.unrefScheduled) {
        this.unrefScheduled = true;
        setImmediate(this.unrefIfIdle);
      }
    } else {
      // Other clocks (a VirtualClock) disarm at once, so runAll() never jumps to a stale deadline.
      this.clock.clearTimeout(this.handle);
      this.handle = undefined;
      this.refed = false;
      this.armedAt = Infinity;
    }
  }

  private append(entry: DeadlineEntry, ms: number): boolean {
    // Most calls of a process use one duration: the last list used is looked up first.
    let index = ms === this.lastMs ? this.lastIndex : this.listOf.get(ms);
    if (index === undefined) {
      if (this.lists.length >= MAX_LISTS) return false;
      index = this.lists.push({ ms, head: undefined, tail: undefined }) - 1;
      this.listOf.set(ms, index);
    }
    this.lastMs = ms;
    this.lastIndex = index;
    const list = this.lists[index]!;
    const tail = list.tail;
    // A deadline armed late (a lazily armed budget) may come before the tail's: the heap
    // takes it, so every list stays sorted.
    if (tail !== undefined && tail.deadline > entry.deadline) return false;
    entry.dlPrev = tail;
    entry.dlNext = undefined;
    if (tail === undefined) list.head = entry;
    else tail.dlNext = entry;
    list.tail = entry;
    entry.heapIndex = -2 - index;
    return true;
  }

  private unlink(entry: DeadlineEntry, list: FixedList): void {
    const prev = entry.dlPrev;
    const next = entry.dlNext;
    if (prev === undefined) list.head = next;
    else prev.dlNext = next;
    if (next === undefined) list.tail = prev;
    else next.dlPrev = prev;
    entry.dlPrev = entry.dlNext = undefined;
    entry.heapIndex = -1;
  }

  /** The entry with the earliest deadline: the heap's top or a list's head. O(lists). */
  private earliest(): DeadlineEntry | undefined {
    let best = this.heap.peek();
    for (const list of this.lists) {
      const head = list.head;
      if (head !== undefined && (best === undefined || head.deadline < best.deadline)) best = head;
    }
    return best;
  }

  private arm(at: number): void {
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
    this.armedAt = at;
    this.handle = this.clock.setTimeout(this.fire, Math.max(0, at - this.clock.now()));
    this.refed = false; // a clock's timers start unref'd (see Clock.setTimeout)
    if (this.count > 0) this.setRef(true);
  }

  private setRef(on: boolean): void {
    setTimerRef(this.handle, on);
    this.refed = on;
  }

  private onTimer(): void {
    this.handle = undefined;
    this.refed = false;
    this.armedAt = Infinity;
    const now = this.clock.now();
    for (;;) {
      const top = this.earliest();
      if (top === undefined) return;
      if (top.deadline > now) {
        this.arm(top.deadline);
        return;
      }
      const i = top.heapIndex;
      if (i >= 0) this.heap.remove(top);
      else this.unlink(top, this.lists[-2 - i]!);
      this.count--;
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
