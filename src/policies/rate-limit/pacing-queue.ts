import { setTimerRef, systemClock, type Clock, type TimerHandle } from '../../core/clock.js';
import { SLOT_EPSILON } from './gcra.js';

/** A call waiting for its slot: a node of the queue's intrusive list, so leaving it is O(1). */
export interface Paced {
  prev: Paced | undefined;
  next: Paced | undefined;
  /** Whether the node is in a queue (a node that left must not be unlinked twice). */
  queued: boolean;
  /** When it may start, on the queue's clock (used by owners whose slots are absolute). */
  readyAt: number;
}

/** What the queue asks of the rate limit that owns it. */
export interface PacingOwner<W extends Paced> {
  /** When the head of the queue may start. */
  headDue(head: W): number;
  /** The head's slot came: it has left the queue; start it. */
  dispatch(w: W): void;
}

/**
 * Calls paced by a rate limit, in slot order, with ONE clock timer armed for the head.
 * Slots are monotonic in arrival order (each reservation comes after the previous one), so
 * a new waiter goes to the tail and only the head's slot ever needs a timer. A waiter whose
 * call ends leaves in O(1); the timer stays until it fires, then re-arms for the new head.
 */
export class PacingQueue<W extends Paced> {
  private head: W | undefined;
  private tail: W | undefined;
  private count = 0;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private clock: Clock = systemClock;
  private firing = false;

  constructor(private readonly owner: PacingOwner<W>) {}

  /** Waiters in the queue. */
  get size(): number {
    return this.count;
  }

  /** Adds a waiter whose slot comes after every queued one's. */
  append(w: W, clock: Clock): void {
    this.linkAfter(w, this.tail);
    this.armFor(clock);
  }

  /**
   * Adds a waiter by its `readyAt`, scanning from the tail: O(1) when slots come in order
   * (they do, up to network reordering of a shared store's replies).
   */
  insert(w: W, clock: Clock): void {
    let after = this.tail;
    while (after !== undefined && after.readyAt > w.readyAt) after = after.prev as W | undefined;
    this.linkAfter(w, after);
    this.armFor(clock);
  }

  /** Takes a waiter out (its call ended); false if it had already left. */
  remove(w: W): boolean {
    if (!w.queued) return false;
    this.unlink(w);
    return true;
  }

  private linkAfter(w: W, after: W | undefined): void {
    w.queued = true;
    w.prev = after;
    w.next = after === undefined ? this.head : after.next;
    if (w.next === undefined) this.tail = w;
    else w.next.prev = w;
    if (after === undefined) this.head = w;
    else after.next = w;
    this.count++;
  }

  private unlink(w: W): void {
    const { prev, next } = w;
    if (prev === undefined) this.head = next as W | undefined;
    else prev.next = next;
    if (next === undefined) this.tail = prev as W | undefined;
    else next.prev = prev;
    w.prev = w.next = undefined;
    w.queued = false;
    if (--this.count === 0 && !this.firing) this.disarm();
  }

  private armFor(clock: Clock): void {
    this.clock = clock;
    if (this.firing) return; // the firing timer re-arms for the head when it is done
    const due = this.owner.headDue(this.head!);
    if (due < this.timerAt) this.arm(due);
  }

  private arm(due: number): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerAt = due;
    this.timer = this.clock.setTimeout(this.onTimer, Math.max(0, due - this.clock.now()));
    // A paced call will start when it fires, and somebody awaits it: keep the process alive.
    setTimerRef(this.timer, true);
  }

  /** The queue emptied: nothing is due, so no timer (runAll() on a VirtualClock never jumps to a stale one). */
  private disarm(): void {
    if (this.timer === undefined) return;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    this.firing = true;
    const now = this.clock.now();
    try {
      for (let w = this.head; w !== undefined; w = this.head) {
        if (this.owner.headDue(w) > now + SLOT_EPSILON) break;
        this.unlink(w);
        this.owner.dispatch(w);
      }
    } finally {
      this.firing = false;
    }
    if (this.head !== undefined) this.arm(this.owner.headDue(this.head));
  };
}
