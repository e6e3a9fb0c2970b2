import type { OutcomeWindow } from './window.js';

/** A slice's calls and failures share one number: calls × CALL + failures (failures ≤ calls < CALL). */
const CALL = 2 ** 26;
/** A slice holding CALL − 1 calls stops counting: one more could carry failures into the calls part. */
const FULL = (CALL - 1) * CALL;

/**
 * Outcomes of the last `ms`, kept in `buckets` time slices of `ms / buckets` each. The
 * slices form a ring: moving into a new slice subtracts the slices that fall out of the
 * window from the running totals and zeroes them, so there is no timer and no interval
 * (opossum runs two per breaker), and a call costs O(1) amortised.
 *
 * Memory matters here (a process may hold a breaker per host): a typed array costs
 * ~190 bytes of V8 bookkeeping before its data, so the slices live in a plain array of
 * doubles, each packing a slice's calls and failures (exact integers below 2^52: up to
 * 67 million calls per slice, beyond which a slice stops counting). Slow calls are counted by `SlowCallTimeWindow` only.
 */
export class TimeWindow implements OutcomeWindow {
  calls = 0;
  failures = 0;
  protected readonly cells: number[];
  private readonly bucketMs: number;
  /** floor(time / bucketMs) of the current slice; it sits at index headSlice % buckets. */
  private headSlice = 0;

  constructor(ms: number, buckets: number) {
    this.bucketMs = ms / buckets;
    this.cells = new Array<number>(buckets).fill(0);
  }

  get timed(): boolean {
    return true;
  }

  get slow(): number {
    return 0;
  }

  get buckets(): number {
    return this.cells.length;
  }

  record(now: number, failed: boolean, _slow: boolean): void {
    this.add(now, failed);
  }

  roll(now: number): void {
    const slice = now > 0 ? Math.floor(now / this.bucketMs) : 0;
    const behind = slice - this.headSlice;
    // A reading from the current slice (or, on a clock that is not monotonic, an earlier one).
    if (behind <= 0) return;
    const cells = this.cells;
    const n = cells.length;
    if (behind >= n) {
      this.reset();
      this.headSlice = slice;
      return;
    }
    let head = this.headSlice % n;
    for (let step = 0; step < behind; step++) {
      head = head + 1 === n ? 0 : head + 1;
      this.expire(head);
    }
    this.headSlice = slice;
  }

  reset(): void {
    this.cells.fill(0);
    this.calls = 0;
    this.failures = 0;
  }

  /** Removes slice `i` from the totals and empties it. */
  protected expire(i: number): void {
    const cell = this.cells[i]!;
    if (cell === 0) return;
    const calls = Math.floor(cell / CALL);
    this.calls -= calls;
    this.failures -= cell - calls * CALL;
    this.cells[i] = 0;
  }

  /** Counts one call in the slice of `now`; returns that slice's index, or -1 when the slice is full. */
  protected add(now: number, failed: boolean): number {
    this.roll(now);
    const head = this.headSlice % this.cells.length;
    const cell = this.cells[head]!;
    if (cell >= FULL) return -1;
    this.cells[head] = cell + (failed ? CALL + 1 : CALL);
    this.calls++;
    if (failed) this.failures++;
    return head;
  }
}

/** A time window that also counts slow calls, for breakers with a `slowCall` rule. */
export class SlowCallTimeWindow extends TimeWindow {
  private slowCount = 0;
  private readonly slowCells: number[];

  constructor(ms: number, buckets: number) {
    super(ms, buckets);
    this.slowCells = new Array<number>(buckets).fill(0);
  }

  override get slow(): number {
    return this.slowCount;
  }

  override record(now: number, failed: boolean, slow: boolean): void {
    const head = this.add(now, failed);
    if (slow && head >= 0) {
      this.slowCells[head]!++;
      this.slowCount++;
    }
  }

  override reset(): void {
    super.reset();
    this.slowCells.fill(0);
    this.slowCount = 0;
  }

  protected override expire(i: number): void {
    super.expire(i);
    this.slowCount -= this.slowCells[i]!;
    this.slowCells[i] = 0;
  }
}
